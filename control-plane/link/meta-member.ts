/**
 * A data or session server's membership of meta: one link to a meta (trying the listed URLs in turn),
 * the heartbeat that keeps the lease, and the validated events meta pushes (table, members, switches,
 * drain). Both member roles use it, so joining meta works the same for each.
 *
 * A meta cut off from its store (etcd) closes this link with 1013 (`unavailable`) and refuses the
 * hello; the link then moves on to the next listed URL, whose meta re-puts this member's key before
 * the first meta's lease on it runs out.
 */
import { META_LINK, type DrainSelfAnswer, type MembersEvent } from '../../proto/meta-link.js';
import type { LinkHello } from '../../proto/rpc.js';
import type { Logger } from '../../proto/runtime/log.js';
import { SHUTDOWN_RESERVE_MS, waitUntil, type ShutdownPhases } from '../../proto/runtime/shutdown.js';
import type { TlsSource } from '../../proto/runtime/tls.js';
import type { SlotTable } from '../../proto/slot-table.js';
import type { FederationConfig } from '../../proto/federation.js';
import type { Switches } from '../../proto/switches.js';
import { LinkClient, type LinkRetry } from './link-client.js';
import type { RpcPeer } from './rpc-peer.js';

/** What a member role (data, session) is told about meta and the links it dials: the same in both. */
export interface MemberLinkOptions {
  /** Meta URLs, comma-separated. */
  readonly metaUrl: string;
  readonly heartbeatMs: number;
  readonly callTimeoutMs: number;
  readonly maxFrameBytes: number;
  /** Reconnect delays of every link the member dials. */
  readonly retry: LinkRetry;
  /** TLS of every link the member dials (none: plain). */
  readonly tls?: TlsSource | undefined;
}

export interface MetaMemberOptions extends MemberLinkOptions {
  readonly hello: LinkHello;
  readonly logger: Logger;
}

export interface MetaMemberEvents {
  table(table: SlotTable): void;
  members(members: MembersEvent): void;
  switches?(switches: Switches): void;
  /** The federation configuration (sessions): peers, tokens, export lists. */
  federation?(config: FederationConfig): void;
  drain?(): void;
  /** Serves the member's own methods to meta on each new link (the console's calls). */
  serve?(peer: RpcPeer): void;
}

/** How a hand-over before stopping went: `refused` when meta had no one to take over. */
export type HandOverOutcome = 'drained' | 'refused' | 'no-meta' | 'timed-out';

export class MetaMember {
  readonly #client: LinkClient;
  readonly #opts: MetaMemberOptions;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(opts: MetaMemberOptions, events: MetaMemberEvents) {
    this.#opts = opts;
    const log = opts.logger;
    this.#client = new LinkClient(
      {
        url: opts.metaUrl,
        hello: opts.hello,
        callTimeoutMs: opts.callTimeoutMs,
        maxFrameBytes: opts.maxFrameBytes,
        retry: opts.retry,
        tls: opts.tls,
        logger: log,
      },
      {
        setup: (peer) => {
          peer.on(META_LINK.table, (table) => events.table(table));
          peer.on(META_LINK.members, (members) => events.members(members));
          peer.on(META_LINK.switches, (switches) => events.switches?.(switches));
          peer.on(META_LINK.federation, (config) => events.federation?.(config));
          peer.on(META_LINK.drain, () => events.drain?.());
          events.serve?.(peer);
        },
      },
    );
  }

  get connected(): boolean {
    return this.#client.peer !== undefined;
  }

  start(): void {
    this.#client.start();
    this.#heartbeat = setInterval(() => {
      this.#client.peer?.call(META_LINK.heartbeat, { id: this.#opts.hello.id }).catch(() => undefined);
    }, this.#opts.heartbeatMs);
    this.#heartbeat.unref();
  }

  /**
   * Asks meta to drain this member (as it stops); meta's drain event follows when it agrees.
   * `undefined` when no meta is connected or it did not answer in time (an older meta, or none).
   */
  async drainSelf(timeoutMs: number): Promise<DrainSelfAnswer | undefined> {
    const peer = this.#client.peer;
    if (peer === undefined) return undefined;
    return peer.call(META_LINK.drainSelf, {}, timeoutMs).catch(() => undefined);
  }

  /**
   * Hands this member's work over before it stops: asks meta to drain it, then waits until
   * `drained()` holds, all within `waitMs`. Never rejects; the outcome says what happened.
   */
  async handOver(drained: () => boolean, waitMs: number): Promise<HandOverOutcome> {
    if (drained()) return 'drained';
    const started = performance.now();
    const answer = await this.drainSelf(Math.min(waitMs, this.#opts.callTimeoutMs));
    if (answer === undefined) return 'no-meta';
    if (!answer.draining) {
      this.#opts.logger.info('meta did not drain this member', { reason: answer.reason });
      return 'refused';
    }
    return (await waitUntil(drained, waitMs - (performance.now() - started))) ? 'drained' : 'timed-out';
  }

  /**
   * A member's first step of a graceful stop: phase `phase` asks meta to drain it and waits until
   * `drained()` holds, leaving the later steps their reserve of the deadline; the outcome is logged.
   */
  async handOverBeforeStop(phases: ShutdownPhases, phase: string, drained: () => boolean): Promise<void> {
    const wait = phases.budgetMs(Number.POSITIVE_INFINITY, SHUTDOWN_RESERVE_MS);
    const outcome = await phases.run(phase, () => this.handOver(drained, wait));
    this.#opts.logger.info('hand-over before stopping', { phase, outcome });
  }

  stop(): void {
    clearInterval(this.#heartbeat);
    this.#client.stop();
  }
}

/**
 * A data or session server's membership of meta: one link to a meta (trying the listed URLs in turn),
 * the heartbeat that keeps the lease, and the validated events meta pushes (table, members, switches,
 * drain). Both member roles use it, so joining meta works the same for each.
 *
 * A meta cut off from its store (etcd) closes this link with 1013 (`unavailable`) and refuses the
 * hello; the link then moves on to the next listed URL, whose meta re-puts this member's key before
 * the first meta's lease on it runs out.
 */
import { META_LINK, type MembersEvent } from '../../proto/meta-link.js';
import type { LinkHello } from '../../proto/rpc.js';
import type { Logger } from '../../proto/runtime/log.js';
import type { SlotTable } from '../../proto/slot-table.js';
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
}

export interface MetaMemberOptions extends MemberLinkOptions {
  readonly hello: LinkHello;
  readonly logger: Logger;
}

export interface MetaMemberEvents {
  table(table: SlotTable): void;
  members(members: MembersEvent): void;
  switches?(switches: Switches): void;
  drain?(): void;
  /** Serves the member's own methods to meta on each new link (the console's calls). */
  serve?(peer: RpcPeer): void;
}

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
        logger: log,
      },
      {
        setup: (peer) => {
          peer.on(META_LINK.table, (table) => events.table(table));
          peer.on(META_LINK.members, (members) => events.members(members));
          peer.on(META_LINK.switches, (switches) => events.switches?.(switches));
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

  stop(): void {
    clearInterval(this.#heartbeat);
    this.#client.stop();
  }
}

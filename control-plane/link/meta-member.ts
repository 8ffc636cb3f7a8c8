/**
 * A data or session server's membership of meta: one link to a meta (trying the listed URLs in turn),
 * the heartbeat that keeps the lease, and the validated events meta pushes (table, members, switches,
 * drain). Both member roles use it, so joining meta works the same for each.
 */
import {
  DRAIN_EVENT,
  SWITCHES_EVENT,
  decodeMembers,
  decodeSlotTable,
  decodeSwitches,
  type LinkHello,
  type MembersEvent,
  type Switches,
} from '../../proto/cluster-link.js';
import type { Logger } from '../../proto/runtime/log.js';
import type { SlotTable } from '../../proto/slot-table.js';
import { LinkClient, type LinkRetry } from './link-client.js';

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
          peer.on('table', (raw) => {
            const t = decodeSlotTable(raw);
            if (t.ok) events.table(t.value);
            else log.error('invalid slot table from meta', { errors: t.errors });
          });
          peer.on('members', (raw) => {
            const m = decodeMembers(raw);
            if (m.ok) events.members(m.value);
            else log.error('invalid member list from meta', { errors: m.errors });
          });
          peer.on(SWITCHES_EVENT, (raw) => {
            const sw = decodeSwitches(raw);
            if (sw.ok) events.switches?.(sw.value);
            else log.error('invalid switches from meta', { errors: sw.errors });
          });
          peer.on(DRAIN_EVENT, () => events.drain?.());
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
      this.#client.peer?.callVoid('heartbeat', { id: this.#opts.hello.id }).catch(() => undefined);
    }, this.#opts.heartbeatMs);
    this.#heartbeat.unref();
  }

  stop(): void {
    clearInterval(this.#heartbeat);
    this.#client.stop();
  }
}

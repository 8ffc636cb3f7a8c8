/**
 * The follower side of replication: one link per slot leader this data server follows, asking for a
 * snapshot of exactly the slots it follows there and then applying the leader's stream of changes.
 * The lag of every change (leader clock to apply) is kept for /health.
 */
import type { Member, OwnedPublisher } from '../../proto/cluster-records.js';
import {
  REPLICATION_LINK,
  type ReplicaItem,
  type ReplicatedDatum,
  type ReplicationOp,
  type KeyedTombstone,
  type ReplicaSlot,
} from '../../proto/replication-link.js';
import type { LinkHello } from '../../proto/rpc.js';
import type { Logger } from '../../proto/runtime/log.js';
import type { TlsSource } from '../../proto/runtime/tls.js';
import { LinkClient, type LinkRetry } from '../link/link-client.js';
import type { DataServer } from './data-server.js';

export interface ReplicaFollowerOptions {
  readonly hello: () => LinkHello;
  readonly slotCount: number;
  readonly callTimeoutMs: number;
  readonly maxFrameBytes: number;
  /** Reconnect delays of the link. */
  readonly retry: LinkRetry;
  /** TLS of the links to the leaders (none: plain). */
  readonly tls?: TlsSource | undefined;
  readonly logger: Logger;
}

export class ReplicaFollower {
  readonly #server: DataServer;
  readonly #opts: ReplicaFollowerOptions;
  readonly #leaders = new Map<string, { client: LinkClient; slots: Set<number> }>();
  readonly #lagMs: number[] = [];

  constructor(server: DataServer, opts: ReplicaFollowerOptions) {
    this.#server = server;
    this.#opts = opts;
  }

  /** Replication lag of the last changes (ms): samples, median and max. */
  lag(): { samples: number; p50: number; max: number } {
    const lag = [...this.#lagMs].sort((a, b) => a - b);
    return { samples: lag.length, p50: lag[Math.floor(lag.length / 2)] ?? 0, max: lag.at(-1) ?? 0 };
  }

  stop(): void {
    for (const l of this.#leaders.values()) l.client.stop();
    this.#leaders.clear();
  }

  /** Keeps one link per leader we follow, replicating exactly the slots we follow under it. */
  follow(plan: ReadonlyMap<string, readonly number[]>, dataMembers: readonly Member[]): void {
    for (const [leader, link] of this.#leaders) {
      if (!plan.has(leader)) {
        link.client.stop();
        this.#leaders.delete(leader);
      }
    }
    for (const [leader, slots] of plan) {
      const existing = this.#leaders.get(leader);
      const wanted = new Set(slots);
      if (existing !== undefined && sameSet(existing.slots, wanted)) continue;
      existing?.client.stop();
      const url = dataMembers.find((m) => m.id === leader)?.url;
      if (url === undefined) {
        this.#opts.logger.warn('no address for slot leader yet', { leader });
        continue;
      }
      const client = this.#link(leader, url, wanted);
      this.#leaders.set(leader, { client, slots: wanted });
      client.start();
    }
  }

  #link(leader: string, url: string, wanted: ReadonlySet<number>): LinkClient {
    let buffered: ReplicationOp[] | undefined;
    return new LinkClient(
      {
        url,
        hello: this.#opts.hello(),
        callTimeoutMs: this.#opts.callTimeoutMs,
        maxFrameBytes: this.#opts.maxFrameBytes,
        retry: this.#opts.retry,
        tls: this.#opts.tls,
        logger: this.#opts.logger,
      },
      {
        setup: (peer) => {
          // Changes that arrive before the snapshot is loaded are applied after it, in order.
          buffered = [];
          peer.on(REPLICATION_LINK.repl, (op) => {
            this.#lagMs.push(Math.max(0, Date.now() - op.sentAt));
            if (this.#lagMs.length > 1000) this.#lagMs.shift();
            if (buffered !== undefined) buffered.push(op);
            else this.#server.applyReplica(op);
          });
        },
        ready: (peer) => {
          peer
            .callPaged(REPLICATION_LINK.replicate, { slots: [...wanted], slotCount: this.#opts.slotCount })
            .then(
              (items) => {
                this.#server.loadReplica(regroup(items));
                for (const op of buffered ?? []) this.#server.applyReplica(op);
                buffered = undefined;
              },
              (err: unknown) => {
                this.#opts.logger.warn('replicate failed', { leader, err });
              },
            );
        },
      },
    );
  }
}

function sameSet(a: ReadonlySet<number>, b: ReadonlySet<number>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

type Datum = { key: string; version: number; publishers: OwnedPublisher[] };

/** The items of a slot's paged snapshot: the slot, each datum's publishers, then its tombstones. */
export function replicaItems(
  slot: number,
  datums: readonly ReplicatedDatum[],
  tombstones: readonly KeyedTombstone[],
): ReplicaItem[] {
  const out: ReplicaItem[] = [{ slot }];
  for (const d of datums) {
    if (d.publishers.length === 0) out.push({ slot, key: d.key, version: d.version });
    for (const publisher of d.publishers) out.push({ slot, key: d.key, version: d.version, publisher });
  }
  for (const { key, ...tombstone } of tombstones) out.push({ slot, key, tombstone });
  return out;
}

/** Rebuilds slots, datums and tombstones from the items of a paged snapshot (a datum's items are consecutive). */
export function regroup(items: readonly ReplicaItem[]): ReplicaSlot[] {
  const slots = new Map<number, { datums: Map<string, Datum>; tombstones: KeyedTombstone[] }>();
  for (const item of items) {
    let content = slots.get(item.slot);
    if (content === undefined) {
      content = { datums: new Map(), tombstones: [] };
      slots.set(item.slot, content);
    }
    if (!('key' in item)) continue;
    if ('tombstone' in item) {
      content.tombstones.push({ key: item.key, ...item.tombstone });
      continue;
    }
    let d = content.datums.get(item.key);
    if (d === undefined)
      content.datums.set(item.key, (d = { key: item.key, version: item.version, publishers: [] }));
    d.version = Math.max(d.version, item.version);
    if (item.publisher !== undefined) d.publishers.push(item.publisher);
  }
  return [...slots].map(([slot, c]) => ({ slot, datums: [...c.datums.values()], tombstones: c.tombstones }));
}

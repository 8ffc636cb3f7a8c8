/**
 * The session's write path: every publisher of every agent connection, written to the data server
 * that leads its slot.
 *
 * The session holds each connection's publishers itself (a data server rebuilding a slot collects
 * them from here). Publishes and withdrawals are grouped by slot leader, one call per data server.
 * Each item's outcome is read on its own: an item no data server can take right now (no leader, a
 * stale epoch after a failover, a link down) is kept and retried when the table changes, when a
 * data server connects, and on a timer; the agent's confirmation is sent when it lands. When a
 * connection closes, its publishers stay for the grace period and are then dropped from the data
 * servers, unless re-sent meanwhile or held by protection mode ({@link ConnectionGrace}).
 */
import type { Confirm, ConfirmResult, Registration, Withdrawal } from '../../proto/agent-link.js';
import type { OwnedPublisher, PublishItem } from '../../proto/cluster-records.js';
import type { CollectParams } from '../../proto/data-link.js';
import { MeshregError } from '../../proto/errors.js';
import { registrationId, type Instance } from '../../proto/instance.js';
import { sharedInstancePool, type InstancePool } from '../../proto/runtime/intern.js';
import { fail, type Result } from '../../proto/result.js';
import type { Logger } from '../../proto/runtime/log.js';
import { slotOf } from '../../proto/slot-table.js';
import type { DataApi } from '../link/data-api.js';
import type { Protection } from '../link/protection.js';
import { ConnectionGrace } from './connection-grace.js';
import type { DataRouter } from './data-router.js';
import { TokenBucket } from './rate-limit.js';
import {
  chunks,
  confirmFrames,
  keyOf,
  pendingKey,
  verdict,
  type ItemOutcome,
  type PublishWrite,
  type UnpublishWrite,
  type Write,
} from './write-batch.js';

/**
 * One publisher as the session keeps it: the compacted instance and its version, no more (the
 * registration ID is derived when it is written).
 */
interface Held {
  readonly instance: Instance;
  readonly version: number;
}

interface ConnRecord {
  readonly nodeId: string;
  /** serviceId → what this connection published. */
  readonly publishers: Map<string, Held>;
}

/** The writes of one connection that go to one data server. */
interface LeaderGroup {
  readonly publish: PublishWrite[];
  readonly unpublish: UnpublishWrite[];
}

interface SendOptions {
  /** The trace context the data server's span should join. */
  readonly traceparent?: string | undefined;
  /** Largest call in JSON bytes of items (retries only: see {@link WritePathOptions.maxCallBytes}). */
  readonly maxCallBytes?: number;
}

export interface WritePathOptions {
  readonly graceMs: number;
  readonly retryIntervalMs: number;
  /**
   * Pacing of the items this session writes to data servers (a token bucket): after a restart
   * every agent re-sends at once; what is over the rate waits and goes out in large batches.
   */
  readonly writeRatePerSec?: number;
  readonly writeBurst?: number;
  /** Monotonic milliseconds for the pacing; injectable for tests. */
  readonly now?: () => number;
  /**
   * Largest publish or unpublish call to one data server when retried writes are gathered from many frames (half
   * the link's frame limit, leaving room for the envelope). Live writes come one agent frame at a time,
   * and an agent frame is within the session's own, smaller frame limit.
   */
  readonly maxCallBytes: number;
  readonly logger: Logger;
  /** Where held instances are compacted (the process-wide pool by default). */
  readonly pool?: InstancePool;
  /** Sends a late confirmation to a connection (if it is still open). */
  readonly confirm: (connId: string, frame: Confirm) => void;
  /** Holds grace drops when too many connections go at once (none: every drop goes through). */
  readonly protection?: Protection | undefined;
  /** The grace timer (live time by default); injectable for tests. */
  readonly graceTimer?: (fn: () => void, ms: number) => () => void;
}

export class WritePath {
  readonly #router: DataRouter;
  readonly #opts: WritePathOptions;
  readonly #pool: InstancePool;
  readonly #conns = new Map<string, ConnRecord>();
  readonly #grace: ConnectionGrace<ConnRecord>;
  /** Writes waiting for a slot leader that can take them, by {@link pendingKey}. */
  readonly #pending = new Map<string, Write>();
  readonly #timer: NodeJS.Timeout;
  readonly #bucket: TokenBucket | undefined;
  /** A retry when the bucket has tokens again for what it held back. */
  #paced: NodeJS.Timeout | undefined;
  #retrying = false;
  /** A retry was asked while one ran: run again right after (a new table must not wait a tick). */
  #again = false;

  constructor(router: DataRouter, opts: WritePathOptions) {
    this.#router = router;
    this.#opts = opts;
    this.#pool = opts.pool ?? sharedInstancePool();
    this.#grace = new ConnectionGrace({
      ...opts,
      open: () => this.#conns.size,
      drop: (connId) => {
        for (const server of this.#router.servers()) {
          server.dropOwner(connId).catch((err: unknown) => {
            this.#opts.logger.warn('dropping publishers failed', { conn: connId, dataId: server.id, err });
          });
        }
      },
    });
    const rate = opts.writeRatePerSec;
    this.#bucket = rate === undefined ? undefined : new TokenBucket(rate, opts.writeBurst ?? rate, opts.now);
    this.#timer = setInterval(() => {
      void this.retry();
    }, opts.retryIntervalMs);
    this.#timer.unref();
  }

  stats(): { publishers: number; pendingWrites: number; connectionsInGrace: number } {
    let publishers = 0;
    for (const r of this.#conns.values()) publishers += r.publishers.size;
    return { publishers, pendingWrites: this.#pending.size, connectionsInGrace: this.#grace.size };
  }

  /** How many publishers a connection holds. */
  publishersOf(connId: string): number {
    return this.#conns.get(connId)?.publishers.size ?? 0;
  }

  open(connId: string, nodeId: string): void {
    this.#conns.set(connId, { nodeId: this.#pool.string(nodeId), publishers: new Map() });
    this.#grace.opened(nodeId);
  }

  /**
   * Records and writes a connection's registrations; resolves to the confirmations of what landed or
   * was refused (what waits for a leader is confirmed later). `traceparent` is the trace context the
   * data server's span should join.
   */
  async publish(
    connId: string,
    regs: readonly Registration[],
    traceparent?: string,
  ): Promise<ConfirmResult[]> {
    const rec = this.#conns.get(connId);
    const results: ConfirmResult[] = [];
    const writes: PublishWrite[] = [];
    for (const reg of regs) {
      const version = reg.version;
      if (rec === undefined || reg.instance.nodeId !== rec.nodeId) {
        const error = { code: 'invalid_argument', message: 'instance.nodeId differs from the hello' };
        results.push({ op: 'publish', id: reg.instance.id, version, error });
        continue;
      }
      const held = rec.publishers.get(reg.instance.id);
      if (held !== undefined && held.version > version) continue;
      const instance = this.#pool.instance(reg.instance);
      rec.publishers.set(instance.id, { instance, version });
      this.#pending.delete(`unpublish:${connId}:${instance.id}`);
      const item: PublishItem = { registrationId: registrationId(instance), instance, version };
      writes.push({ op: 'publish', conn: connId, id: instance.id, item });
    }
    results.push(...(await this.#write(connId, writes, { traceparent })));
    return results;
  }

  /** Forgets and withdraws a connection's registrations; resolves like {@link publish}. */
  async unpublish(connId: string, ws: readonly Withdrawal[]): Promise<ConfirmResult[]> {
    const rec = this.#conns.get(connId);
    const writes = ws.map((w): UnpublishWrite => {
      const held = rec?.publishers.get(w.id);
      if (held !== undefined && held.version <= w.version) rec?.publishers.delete(w.id);
      this.#pending.delete(`publish:${connId}:${w.id}`);
      const regId = registrationId({ nodeId: rec?.nodeId ?? '', id: w.id });
      const item = { key: w.service, registrationId: regId, version: w.version };
      return { op: 'unpublish', conn: connId, id: w.id, item };
    });
    return this.#write(connId, writes, {});
  }

  /**
   * A connection closed: keep its publishers for the grace period, then drop what is still its
   * own. With `dropNow` (a switched-off client) they are dropped at once.
   */
  closed(connId: string, dropNow = false): void {
    const rec = this.#conns.get(connId);
    this.#conns.delete(connId);
    for (const [k, p] of this.#pending) if (p.conn === connId) this.#pending.delete(k);
    if (rec === undefined || rec.publishers.size === 0) return;
    this.#grace.closed(connId, rec, dropNow);
  }

  /**
   * Publishers of this session in `slots`: open connections and those still in grace (not held); of
   * open connections only for a restore (`openOnly`, see {@link CollectParams}).
   */
  collect(p: CollectParams): OwnedPublisher[] {
    const wanted = new Set(p.slots);
    const out: OwnedPublisher[] = [];
    const add = (connId: string, rec: ConnRecord): void => {
      for (const { instance, version } of rec.publishers.values()) {
        if (wanted.has(slotOf(instance.service, p.slotCount)))
          out.push({ registrationId: registrationId(instance), instance, version, owner: connId });
      }
    };
    for (const [id, rec] of this.#conns) add(id, rec);
    if (p.openOnly !== true) for (const [id, g] of this.#grace.inGrace()) add(id, g.rec);
    return out;
  }

  /** Tries every write that waits for a slot leader; confirms what lands to its connection. */
  async retry(): Promise<void> {
    if (this.#retrying) {
      this.#again = true;
      return;
    }
    if (this.#pending.size === 0) return;
    this.#retrying = true;
    this.#again = false;
    try {
      const byConn = new Map<string, Write[]>();
      for (const w of this.#pending.values()) {
        const list = byConn.get(w.conn);
        if (list === undefined) byConn.set(w.conn, [w]);
        else list.push(w);
      }
      this.#pending.clear();
      // All connections at once: their writes reach the data servers together, so each datum changes
      // (and is pushed) about once for the whole batch, not once per connection.
      await Promise.all(
        [...byConn].map(async ([conn, writes]) => {
          const results = await this.#write(conn, writes, { maxCallBytes: this.#opts.maxCallBytes });
          for (const frame of confirmFrames(results))
            this.#opts.confirm(conn, { type: 'confirm', results: frame });
        }),
      );
    } finally {
      this.#retrying = false;
    }
    if (this.#again) await this.retry();
  }

  close(): void {
    clearInterval(this.#timer);
    clearTimeout(this.#paced);
    this.#grace.close();
  }

  /**
   * Writes one connection's items, one call per slot leader (in chunks: see {@link chunks}); returns
   * the confirmations of what landed or was refused, and queues what waits for a leader.
   */
  async #write(conn: string, all: readonly Write[], opts: SendOptions): Promise<ConfirmResult[]> {
    const results: ConfirmResult[] = [];
    const groups = new Map<DataApi, LeaderGroup>();
    const writes = this.#pace(all);
    for (const w of writes) {
      const leader = this.#router.forKey(keyOf(w));
      if (!leader.ok) {
        this.#settle(w, leader.error, results);
        continue;
      }
      let group = groups.get(leader.value);
      if (group === undefined) {
        group = { publish: [], unpublish: [] };
        groups.set(leader.value, group);
      }
      if (w.op === 'publish') group.publish.push(w);
      else group.unpublish.push(w);
    }
    await Promise.all([...groups].map(([server, group]) => this.#send(server, conn, group, opts, results)));
    return results;
  }

  /** The writes the bucket allows now; the others wait (as pending) for the tokens to refill. */
  #pace(writes: readonly Write[]): readonly Write[] {
    const bucket = this.#bucket;
    if (bucket === undefined || writes.length === 0) return writes;
    const allowed = bucket.takeUpTo(writes.length);
    if (allowed === writes.length) return writes;
    for (const w of writes.slice(allowed)) if (this.#conns.has(w.conn)) this.#pending.set(pendingKey(w), w);
    if (this.#paced === undefined) {
      this.#paced = setTimeout(() => {
        this.#paced = undefined;
        void this.retry();
      }, bucket.msUntil(this.#pending.size));
      this.#paced.unref();
    }
    return writes.slice(0, allowed);
  }

  /**
   * One data server's share. A call over the link's frame limit would close the link and be retried
   * the same way forever: retries gather many frames' items, so they are cut by `maxCallBytes` too.
   */
  async #send(
    server: DataApi,
    conn: string,
    group: LeaderGroup,
    opts: SendOptions,
    results: ConfirmResult[],
  ): Promise<void> {
    const epoch = this.#router.epoch;
    for (const chunk of chunks(group.publish, opts.maxCallBytes)) {
      const items = chunk.map((w) => w.item);
      const answer = await this.#guard(server, () => server.publish(conn, items, epoch, opts.traceparent));
      this.#settleAll(chunk, answer, results);
    }
    for (const chunk of chunks(group.unpublish, opts.maxCallBytes)) {
      const items = chunk.map((w) => w.item);
      this.#settleAll(chunk, await this.#guard(server, () => server.unpublish(items, epoch)), results);
    }
  }

  /** A DataApi returns its expected failures; a rejection is a bug, logged, and the items refused. */
  async #guard<T>(server: DataApi, call: () => Promise<Result<T>>): Promise<Result<T>> {
    try {
      return await call();
    } catch (err) {
      this.#opts.logger.error('data server call failed unexpectedly', { dataId: server.id, err });
      return fail('internal', 'internal error');
    }
  }

  /** Reads a call's answer item by item. */
  #settleAll(
    chunk: readonly Write[],
    answer: Result<readonly ItemOutcome[]>,
    results: ConfirmResult[],
  ): void {
    let outcomes: readonly ItemOutcome[] = answer.ok ? answer.value : chunk.map(() => answer.error);
    if (outcomes.length !== chunk.length) {
      // A bug on one side of the link: nothing can be said of any item.
      this.#opts.logger.error('data server answered another number of outcomes than items', {
        items: chunk.length,
        outcomes: outcomes.length,
      });
      const error = new MeshregError('internal', 'internal error');
      outcomes = chunk.map(() => error);
    }
    for (const [i, w] of chunk.entries()) {
      const outcome = outcomes[i];
      if (outcome !== undefined) this.#settle(w, outcome, results);
    }
  }

  /** Confirms, refuses, or queues one item (only while its connection is open) by its outcome. */
  #settle(w: Write, outcome: ItemOutcome, results: ConfirmResult[]): void {
    const v = verdict(w, outcome);
    if (v.kind !== 'retry') results.push(v.result);
    else if (this.#conns.has(w.conn)) this.#pending.set(pendingKey(w), w);
  }
}

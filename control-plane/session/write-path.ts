/**
 * The session's write path: every publisher of every agent connection, written to the data server
 * that leads its slot.
 *
 * The session holds each connection's publishers itself (a data server rebuilding a slot collects
 * them from here). A write that fails because no data server leads the slot right now (a failover,
 * a table change) is kept and retried when the table changes, when a data server connects, and on a
 * timer; the agent's confirmation is sent when it lands. When a connection closes, its publishers
 * stay for the grace period and are then dropped from the data servers, unless re-sent meanwhile.
 */
import {
  MAX_BATCH,
  type Confirm,
  type ConfirmResult,
  type Registration,
  type Withdrawal,
} from '../../proto/agent-link.js';
import type { OwnedPublisher, PublishItem } from '../../proto/cluster-records.js';
import type { CollectParams } from '../../proto/data-link.js';
import { MeshregError } from '../../proto/errors.js';
import { registrationId } from '../../proto/instance.js';
import type { Logger } from '../../proto/runtime/log.js';
import { slotOf } from '../../proto/slot-table.js';
import type { DataRouter } from './data-router.js';

interface ConnRecord {
  readonly nodeId: string;
  /** serviceId → what this connection published. */
  readonly publishers: Map<string, PublishItem>;
}

type Pending =
  | { readonly op: 'publish'; readonly conn: string; readonly item: PublishItem }
  | { readonly op: 'unpublish'; readonly conn: string; readonly w: Withdrawal; readonly regId: string };

export interface WritePathOptions {
  readonly graceMs: number;
  readonly retryIntervalMs: number;
  /**
   * Largest publish call to one data server when retried writes are gathered from many frames (half
   * the link's frame limit, leaving room for the envelope). Live writes come one agent frame at a time,
   * and an agent frame is within the session's own, smaller frame limit.
   */
  readonly maxCallBytes: number;
  readonly logger: Logger;
  /** Sends a late confirmation to a connection (if it is still open). */
  readonly confirm: (connId: string, frame: Confirm) => void;
}

const RETRIABLE = new Set(['stale_epoch', 'unavailable']);

export class WritePath {
  readonly #router: DataRouter;
  readonly #opts: WritePathOptions;
  readonly #conns = new Map<string, ConnRecord>();
  readonly #grace = new Map<string, { rec: ConnRecord; timer: NodeJS.Timeout }>();
  readonly #pending = new Map<string, Pending>();
  readonly #timer: NodeJS.Timeout;
  #retrying = false;

  constructor(router: DataRouter, opts: WritePathOptions) {
    this.#router = router;
    this.#opts = opts;
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
    this.#conns.set(connId, { nodeId, publishers: new Map() });
  }

  /** `traceparent` is the trace context the data server's span should join. */
  async publish(
    connId: string,
    regs: readonly Registration[],
    traceparent?: string,
  ): Promise<ConfirmResult[]> {
    const rec = this.#conns.get(connId);
    const results: ConfirmResult[] = [];
    const items: PublishItem[] = [];
    for (const { instance, version } of regs) {
      if (rec === undefined || instance.nodeId !== rec.nodeId) {
        results.push(
          refused(
            'publish',
            instance.id,
            version,
            'invalid_argument',
            'instance.nodeId differs from the hello',
          ),
        );
        continue;
      }
      const item: PublishItem = { registrationId: registrationId(instance), instance, version };
      const held = rec.publishers.get(instance.id);
      if (held !== undefined && held.version > version) continue;
      rec.publishers.set(instance.id, item);
      this.#pending.delete(`unpublish:${connId}:${instance.id}`);
      items.push(item);
    }
    results.push(...(await this.#writePublishes(connId, items, traceparent)));
    return results;
  }

  async unpublish(connId: string, ws: readonly Withdrawal[]): Promise<ConfirmResult[]> {
    const rec = this.#conns.get(connId);
    const results: ConfirmResult[] = [];
    for (const w of ws) {
      const held = rec?.publishers.get(w.id);
      if (held !== undefined && held.version <= w.version) rec?.publishers.delete(w.id);
      this.#pending.delete(`publish:${connId}:${w.id}`);
      const regId = registrationId({ nodeId: rec?.nodeId ?? '', id: w.id });
      const r = await this.#writeUnpublish(connId, w, regId);
      if (r !== undefined) results.push(r);
    }
    return results;
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
    const timer = setTimeout(
      () => {
        this.#grace.delete(connId);
        for (const server of this.#router.servers()) {
          server.dropOwner(connId).catch((err: unknown) => {
            this.#opts.logger.warn('dropping publishers failed', { conn: connId, dataId: server.id, err });
          });
        }
      },
      dropNow ? 0 : this.#opts.graceMs,
    );
    timer.unref();
    this.#grace.set(connId, { rec, timer });
  }

  /** Publishers of this session in `slots` (open connections and those still in grace). */
  collect(p: CollectParams): OwnedPublisher[] {
    const wanted = new Set(p.slots);
    const out: OwnedPublisher[] = [];
    const add = (connId: string, rec: ConnRecord): void => {
      for (const item of rec.publishers.values()) {
        if (wanted.has(slotOf(item.instance.service, p.slotCount))) out.push({ ...item, owner: connId });
      }
    };
    for (const [id, rec] of this.#conns) add(id, rec);
    for (const [id, g] of this.#grace) add(id, g.rec);
    return out;
  }

  /** Tries every write that failed for want of a slot leader. */
  async retry(): Promise<void> {
    if (this.#retrying || this.#pending.size === 0) return;
    this.#retrying = true;
    try {
      const batch = [...this.#pending.values()];
      this.#pending.clear();
      const byConn = new Map<string, PublishItem[]>();
      for (const p of batch) {
        if (p.op === 'publish') {
          const list = byConn.get(p.conn);
          if (list === undefined) byConn.set(p.conn, [p.item]);
          else list.push(p.item);
        } else {
          const r = await this.#writeUnpublish(p.conn, p.w, p.regId);
          if (r !== undefined) this.#opts.confirm(p.conn, { type: 'confirm', results: [r] });
        }
      }
      // All connections at once: their writes reach the data servers together, so each datum changes
      // (and is pushed) about once for the whole batch, not once per connection.
      await Promise.all(
        [...byConn].map(async ([conn, items]) => {
          const results = await this.#writePublishes(conn, items, undefined, this.#opts.maxCallBytes);
          // A confirm frame carries at most MAX_BATCH results (the agent refuses larger ones).
          for (let i = 0; i < results.length; i += MAX_BATCH) {
            this.#opts.confirm(conn, { type: 'confirm', results: results.slice(i, i + MAX_BATCH) });
          }
        }),
      );
    } finally {
      this.#retrying = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
    for (const g of this.#grace.values()) clearTimeout(g.timer);
    this.#grace.clear();
  }

  /** Writes publishers grouped by leader; returns confirmations for what landed or was refused. */
  async #writePublishes(
    connId: string,
    items: readonly PublishItem[],
    traceparent?: string,
    maxCallBytes?: number,
  ): Promise<ConfirmResult[]> {
    const results: ConfirmResult[] = [];
    const groups = new Map<string, PublishItem[]>();
    for (const item of items) {
      try {
        const id = this.#router.forKey(item.instance.service).id;
        const list = groups.get(id);
        if (list === undefined) groups.set(id, [item]);
        else list.push(item);
      } catch (err) {
        this.#defer(results, { op: 'publish', conn: connId, item }, err);
      }
    }
    await Promise.all(
      [...groups].map(async ([id, group]) => {
        const server = this.#router.servers().find((s) => s.id === id);
        // In chunks of MAX_BATCH (what one agent frame carries) and, for a retry that gathered writes
        // of many frames, of at most `maxCallBytes`: a call over the link's limit would close the link
        // and be retried the same way forever.
        for (const chunk of chunks(group, maxCallBytes)) {
          try {
            if (server === undefined) throw new MeshregError('unavailable', `data server ${id} is gone`);
            await server.publish(connId, chunk, this.#router.epoch, traceparent);
            for (const c of chunk) results.push({ op: 'publish', id: c.instance.id, version: c.version });
          } catch (err) {
            for (const item of chunk) this.#defer(results, { op: 'publish', conn: connId, item }, err);
          }
        }
      }),
    );
    return results;
  }

  async #writeUnpublish(connId: string, w: Withdrawal, regId: string): Promise<ConfirmResult | undefined> {
    try {
      await this.#router
        .forKey(w.service)
        .unpublish([{ key: w.service, registrationId: regId, version: w.version }], this.#router.epoch);
      return { op: 'unpublish', id: w.id, version: w.version };
    } catch (err) {
      const results: ConfirmResult[] = [];
      this.#defer(results, { op: 'unpublish', conn: connId, w, regId }, err);
      return results[0];
    }
  }

  /** Queues a retriable failure; records any other failure as a refusal. */
  #defer(results: ConfirmResult[], p: Pending, err: unknown): void {
    const id = p.op === 'publish' ? p.item.instance.id : p.w.id;
    const version = p.op === 'publish' ? p.item.version : p.w.version;
    if (err instanceof MeshregError && RETRIABLE.has(err.code)) {
      if (this.#conns.has(p.conn)) this.#pending.set(`${p.op}:${p.conn}:${id}`, p);
      return;
    }
    results.push(
      refused(
        p.op,
        id,
        version,
        err instanceof MeshregError ? err.code : 'internal',
        err instanceof MeshregError ? err.message : 'internal error',
      ),
    );
  }
}

/** `items` in runs of at most MAX_BATCH and, when `maxBytes` is given, of about that many JSON bytes. */
function chunks(items: readonly PublishItem[], maxBytes: number | undefined): PublishItem[][] {
  const out: PublishItem[][] = [];
  let current: PublishItem[] = [];
  let bytes = 0;
  for (const item of items) {
    // Only retries measure: live writes arrive within an agent frame's limit already.
    const size = maxBytes === undefined ? 0 : Buffer.byteLength(JSON.stringify(item)) + 1;
    if (current.length > 0 && (current.length >= MAX_BATCH || bytes + size > (maxBytes ?? Infinity))) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

function refused(
  op: 'publish' | 'unpublish',
  id: string,
  version: number,
  code: string,
  message: string,
): ConfirmResult {
  return { op, id, version, error: { code, message } };
}

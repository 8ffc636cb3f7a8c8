/**
 * The invariant checker: a pure function of a recorded {@link History} that returns every violation
 * of the five invariants of issue #14, each with an excerpt of the history around it.
 *
 * 1. monotonic: per subscriber, `X-Consul-Index` and pushed versions never go backwards.
 * 2. converged: within `convergeBoundMs` of the heal, every subscriber answers exactly the
 *    registered set, and keeps answering it.
 * 3. no shrink: an instance a subscriber saw leaves its answers only after a deregistration was sent,
 *    or after its agent was killed on purpose and the grace passed.
 * 4. no phantom: nothing is answered before it was registered, nothing comes back once it was seen
 *    gone after its deregistration.
 * 5. one table writer: slot-table epochs only grow, no epoch is written twice, and no two metas write
 *    the table within `leaderOverlapMs` of each other (two leaders at once).
 *
 * Registrations whose outcome is unknown (the request failed midway) may be present or absent.
 */
import { excerpt, type History, type Observation, type OpEvent } from './history.js';

/** The five invariants, by name. */
export type InvariantName = 'monotonic' | 'converged' | 'no-shrink' | 'no-phantom' | 'one-table-writer';

/** The invariants in the order they are reported. */
export const INVARIANTS: readonly InvariantName[] = [
  'monotonic',
  'converged',
  'no-shrink',
  'no-phantom',
  'one-table-writer',
];

/** One broken invariant, where and why. */
export interface Violation {
  readonly invariant: InvariantName;
  readonly time: number;
  readonly message: string;
  /** The history around `time`, one event a line. */
  readonly excerpt: readonly string[];
}

/** Settings of the checker that depend on the cluster's timings. */
export interface CheckOptions {
  /** Two different metas writing the table closer than this are two leaders at once. */
  readonly leaderOverlapMs: number;
}

/** Every violation of the five invariants in `h` (empty when all hold). */
export function checkHistory(h: History, opts: CheckOptions): Violation[] {
  const ctx = new Context(h);
  return [
    ...checkMonotonic(ctx),
    ...checkConverged(ctx),
    ...checkNoShrink(ctx),
    ...checkNoPhantom(ctx),
    ...checkOneWriter(ctx, opts.leaderOverlapMs),
  ];
}

/** Indexes of a history the checks share. */
class Context {
  readonly h: History;
  /** Operations per instance id, in start order. */
  readonly opsById = new Map<string, OpEvent[]>();
  /** Observations per subscriber, in record order. */
  readonly streams = new Map<string, Observation[]>();

  constructor(h: History) {
    this.h = h;
    for (const o of [...h.ops].sort((a, b) => a.start - b.start)) {
      const list = this.opsById.get(o.id) ?? [];
      list.push(o);
      this.opsById.set(o.id, list);
    }
    for (const o of h.observations) {
      const list = this.streams.get(o.subscriber) ?? [];
      list.push(o);
      this.streams.set(o.subscriber, list);
    }
  }

  violation(invariant: InvariantName, time: number, message: string, keys: readonly string[]): Violation {
    return { invariant, time, message, excerpt: excerpt(this.h, time, keys) };
  }

  /** The operations on `id` sent by `time` that may have taken effect. */
  opsBy(id: string, time: number): OpEvent[] {
    return (this.opsById.get(id) ?? []).filter((o) => o.start <= time && o.ok !== false);
  }

  /** Whether `id`'s agent was killed on purpose long enough before `time` for its instances to leave. */
  agentGone(id: string, time: number): boolean {
    const agent = this.opsById.get(id)?.[0]?.agent;
    let killedAt: number | undefined;
    for (const a of this.h.agents) {
      if (a.agent !== agent || a.time > time) continue;
      if (a.phase === 'killed') killedAt = a.time;
      // After a restart the agent re-sends; until then (bounded by convergence) it may be missing.
      else if (killedAt !== undefined && a.time + this.h.convergeBoundMs < time) killedAt = undefined;
    }
    return killedAt !== undefined && killedAt + this.h.agentGraceMs <= time;
  }

  /** The latest time before `time` that `id` was (re)introduced: registered, or re-sent by its restarted agent. */
  introducedAt(id: string, time: number): number {
    const ops = this.opsById.get(id) ?? [];
    const agent = ops[0]?.agent;
    let at = Number.NEGATIVE_INFINITY;
    for (const o of ops) if (o.kind === 'register' && o.start <= time) at = Math.max(at, o.start);
    for (const a of this.h.agents)
      if (a.agent === agent && a.phase === 'restarted' && a.time <= time) at = Math.max(at, a.time);
    return at;
  }

  /** What must be, and what may be, in `service`'s set after everything: definite and open ids. */
  finalSet(service: string): { must: Set<string>; may: Set<string> } {
    const must = new Set<string>();
    const may = new Set<string>();
    for (const [id, ops] of this.opsById) {
      if (ops[0]?.service !== service) continue;
      const last = ops.filter((o) => o.ok !== false).at(-1);
      if (last === undefined) continue;
      const open = last.ok === 'unknown' || this.agentGone(id, Number.POSITIVE_INFINITY);
      if (open) may.add(id);
      else if (last.kind === 'register') must.add(id);
    }
    return { must, may };
  }
}

function checkMonotonic(ctx: Context): Violation[] {
  const out: Violation[] = [];
  for (const [sub, obs] of ctx.streams) {
    for (let i = 1; i < obs.length; i++) {
      const prev = obs[i - 1];
      const cur = obs[i];
      if (prev === undefined || cur === undefined || cur.index >= prev.index) continue;
      const what = cur.via === 'push' ? 'pushed version' : 'X-Consul-Index';
      out.push(
        ctx.violation('monotonic', cur.time, `${sub}: ${what} went back from ${prev.index} to ${cur.index}`, [
          sub,
        ]),
      );
    }
  }
  return out;
}

function checkConverged(ctx: Context): Violation[] {
  const out: Violation[] = [];
  const { healedAt, convergeBoundMs } = ctx.h;
  if (!Number.isFinite(healedAt)) return out;
  const deadline = healedAt + convergeBoundMs;
  const pairs = new Map<string, Observation[]>();
  for (const o of ctx.h.observations) {
    if (o.ids === undefined) continue;
    const key = `${o.agent} ${o.service}`;
    pairs.set(key, [...(pairs.get(key) ?? []), o]);
  }
  for (const [key, obs] of pairs) {
    const [agent = '', service = ''] = key.split(' ');
    const set = ctx.finalSet(service);
    const fits = (o: Observation): string | undefined => setDiff(o.ids ?? [], set);
    const inTime = obs.filter((o) => o.time >= healedAt && o.time <= deadline);
    const hit = inTime.find((o) => fits(o) === undefined);
    const last = obs.at(-1);
    if (hit === undefined) {
      const seen = inTime.at(-1) ?? last;
      const why = seen === undefined ? 'no answer' : (fits(seen) ?? '');
      out.push(
        ctx.violation(
          'converged',
          deadline,
          `${agent} ${service}: not the registered set within ${convergeBoundMs} ms of the heal: ${why}`,
          [service],
        ),
      );
    } else if (last !== undefined && last.time > hit.time && fits(last) !== undefined) {
      out.push(
        ctx.violation(
          'converged',
          last.time,
          `${last.subscriber}: left the registered set: ${fits(last) ?? ''}`,
          [service],
        ),
      );
    }
  }
  return out;
}

/** Why `ids` is not the final set (missing or extra ids), or undefined when it is. */
function setDiff(ids: readonly string[], set: { must: Set<string>; may: Set<string> }): string | undefined {
  const got = new Set(ids);
  const missing = [...set.must].filter((id) => !got.has(id));
  const extra = ids.filter((id) => !set.must.has(id) && !set.may.has(id));
  if (missing.length === 0 && extra.length === 0) return undefined;
  return `missing [${missing.join(',')}] extra [${extra.join(',')}]`;
}

function checkNoShrink(ctx: Context): Violation[] {
  const out: Violation[] = [];
  for (const [sub, obs] of ctx.streams) {
    const seen = new Set<string>();
    for (const o of obs) {
      if (o.ids === undefined) continue;
      const now = new Set(o.ids);
      for (const id of seen) {
        if (now.has(id)) continue;
        seen.delete(id);
        // Gone is fine once a deregistration was sent (even one whose answer was lost).
        const ops = ctx.opsBy(id, o.time);
        const deregistered = ops.some((op) => op.kind === 'deregister');
        // A phantom that leaves is reported as a phantom, not as a shrink.
        const phantom = !ops.some((op) => op.kind === 'register');
        if (deregistered || phantom || ctx.agentGone(id, o.time)) continue;
        out.push(
          ctx.violation('no-shrink', o.time, `${sub}: ${id} left the answer without a deregistration`, [
            id,
            sub,
          ]),
        );
      }
      for (const id of o.ids) seen.add(id);
    }
  }
  return out;
}

function checkNoPhantom(ctx: Context): Violation[] {
  const out: Violation[] = [];
  for (const [sub, obs] of ctx.streams) {
    /** Ids this subscriber saw gone after a deregistration was confirmed, and since when. */
    const goneAfterDereg = new Map<string, number>();
    /** When this subscriber last answered each id. */
    const seen = new Map<string, number>();
    for (const o of obs) {
      if (o.ids === undefined) continue;
      const now = new Set(o.ids);
      for (const id of o.ids) {
        const ops = ctx.opsBy(id, o.time);
        if (!ops.some((op) => op.kind === 'register')) {
          out.push(ctx.violation('no-phantom', o.time, `${sub}: ${id} answered but never registered`, [id]));
          continue;
        }
        const goneAt = goneAfterDereg.get(id);
        if (goneAt === undefined) continue;
        goneAfterDereg.delete(id);
        const reRegistered = ops.some((op) => op.kind === 'register' && op.start > goneAt);
        if (!reRegistered)
          out.push(
            ctx.violation('no-phantom', o.time, `${sub}: ${id} came back after its deregistration`, [
              id,
              sub,
            ]),
          );
      }
      for (const [id, ops] of ctx.opsById) {
        const last = ops.filter((op) => op.start <= o.time && op.ok === true).at(-1);
        // The absence reflects the deregistration only if the subscriber had seen the copy it removed
        // (answered after the latest registration or agent restart); else it may still lag behind.
        const seenAt = seen.get(id);
        if (
          last?.kind === 'deregister' &&
          seenAt !== undefined &&
          seenAt >= ctx.introducedAt(id, last.start) &&
          !now.has(id) &&
          !goneAfterDereg.has(id)
        )
          goneAfterDereg.set(id, o.time);
      }
      for (const id of o.ids) seen.set(id, o.time);
    }
  }
  return out;
}

function checkOneWriter(ctx: Context, overlapMs: number): Violation[] {
  const out: Violation[] = [];
  const writes = [...ctx.h.tableWrites].sort((a, b) => a.revision - b.revision);
  const byEpoch = new Map<number, Set<string>>();
  for (let i = 0; i < writes.length; i++) {
    const w = writes[i];
    if (w === undefined) continue;
    const writers = byEpoch.get(w.epoch) ?? new Set<string>();
    writers.add(w.writer);
    byEpoch.set(w.epoch, writers);
    const prev = writes[i - 1];
    const keys = ['slot table'];
    if (prev !== undefined && w.epoch <= prev.epoch)
      out.push(
        ctx.violation(
          'one-table-writer',
          w.time,
          `slot table epoch ${w.epoch} (by ${w.writer}) written after epoch ${prev.epoch} (by ${prev.writer})`,
          keys,
        ),
      );
    const rival = writes.find(
      (x) =>
        x.writer !== w.writer &&
        x.writer !== 'unknown' &&
        w.writer !== 'unknown' &&
        x.revision < w.revision &&
        w.time - x.time < overlapMs,
    );
    if (rival !== undefined)
      out.push(
        ctx.violation(
          'one-table-writer',
          w.time,
          `two metas write the slot table: ${rival.writer} (epoch ${rival.epoch}) and ${w.writer} (epoch ${w.epoch}) ${w.time - rival.time} ms apart`,
          keys,
        ),
      );
  }
  return out;
}

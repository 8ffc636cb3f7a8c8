/**
 * Members whose key vanished from the store without being withdrawn (their meta's lease ran out: the
 * meta died or was cut off, or etcd itself was away) are kept for a grace period, so their slots do not
 * move while they re-join another meta. A member withdrawn on purpose (its heartbeats stopped) leaves
 * at once. Grace is judged by live time: a stall of this process does not use it up.
 */
import { loopMonitor } from '../../proto/runtime/loop-monitor.js';
import type { SharedMember } from './meta-store.js';

interface Kept {
  readonly member: SharedMember;
  readonly until: number;
}

export class MemberGrace {
  readonly #graceMs: number;
  readonly #now: () => number;
  #last = new Map<string, SharedMember>();
  readonly #kept = new Map<string, Kept>();

  constructor(graceMs: number, now: () => number = () => loopMonitor.liveNow()) {
    this.#graceMs = graceMs;
    this.#now = now;
  }

  /**
   * Takes the members the store holds and the ids withdrawn on purpose; returns the members to report:
   * the stored ones plus those that vanished otherwise less than the grace period ago.
   */
  update(
    stored: ReadonlyMap<string, SharedMember>,
    withdrawn: ReadonlySet<string>,
  ): Map<string, SharedMember> {
    const now = this.#now();
    for (const [id, m] of this.#last) {
      if (stored.has(id) || withdrawn.has(id) || this.#kept.has(id)) continue;
      this.#kept.set(id, { member: m, until: now + this.#graceMs });
    }
    const out = new Map(stored);
    for (const [id, k] of this.#kept) {
      if (stored.has(id) || withdrawn.has(id) || k.until <= now) this.#kept.delete(id);
      else out.set(id, k.member);
    }
    this.#last = out;
    return out;
  }

  /** Milliseconds until the first kept member's grace ends (then `update` again), if any is kept. */
  nextExpiryMs(): number | undefined {
    let first: number | undefined;
    for (const k of this.#kept.values()) first = Math.min(first ?? k.until, k.until);
    return first === undefined ? undefined : Math.max(0, first - this.#now());
  }
}

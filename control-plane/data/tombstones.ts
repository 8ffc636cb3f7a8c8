/**
 * Withdrawn registrations, remembered for a while so that an older publish of them that arrives
 * late (through another session, a delayed link, a migration's collect or a replica) cannot bring
 * them back. A tombstone holds the version the registration was withdrawn at: a publish at that
 * version or below is refused, a newer one (a real re-registration) passes and clears it.
 *
 * Memory is bounded twice: a tombstone lives `ttlMs` of live time (the data server sets it above
 * the session grace period, the longest a stale copy can sit in a session), and at most `cap` are
 * kept (the oldest go first). Insertion order is age order, so both sweeps start at the front.
 */
import type { KeyedTombstone } from '../../proto/replication-link.js';
import { loopMonitor } from '../../proto/runtime/loop-monitor.js';

/** Default life of a tombstone (ms); a data server keeps them at least twice its session grace. */
export const TOMBSTONE_MS = 60_000;
/** Default most tombstones held (about 150 bytes each). */
export const TOMBSTONE_CAP = 200_000;

export interface TombstoneOptions {
  /** How long a tombstone is kept (ms of `now`). */
  readonly ttlMs: number;
  /** Most tombstones kept; past it the oldest are forgotten. */
  readonly cap: number;
  /** Time in ms that a stall of this process does not advance (live time). */
  readonly now: () => number;
}

interface Entry extends KeyedTombstone {
  readonly id: string;
  readonly slot: number;
  readonly at: number;
}

export class Tombstones {
  /** `key` + NUL + registration ID → tombstone. */
  readonly #entries = new Map<string, Entry>();
  /**
   * Age order, oldest at `#head`: the entries as added. An entry replaced or dropped since leaves
   * its old place behind, skipped when reached. Not the map's own order: taking entries off the
   * front of a Map leaves holes that every later walk from the front steps over again.
   */
  #order: Entry[] = [];
  #head = 0;
  readonly #bySlot = new Map<number, Set<string>>();
  readonly #opts: TombstoneOptions;
  #evicted = 0;

  constructor(opts: TombstoneOptions) {
    this.#opts = opts;
  }

  /** Tombstones held, after dropping the expired ones. */
  get size(): number {
    this.sweep();
    return this.#entries.size;
  }

  /** How many were forgotten before their time because the cap was reached. */
  get evicted(): number {
    return this.#evicted;
  }

  /** Remembers that `regId` of `key` was withdrawn at `version` (the higher of two withdrawals). */
  add(key: string, slot: number, regId: string, version: number): void {
    const id = entryId(key, regId);
    const old = this.#entries.get(id);
    this.#delete(id);
    const entry: Entry = {
      id,
      key,
      slot,
      registrationId: regId,
      version: Math.max(version, old?.version ?? 0),
      at: this.#opts.now(),
    };
    this.#entries.set(id, entry);
    this.#order.push(entry);
    let ids = this.#bySlot.get(slot);
    if (ids === undefined) this.#bySlot.set(slot, (ids = new Set()));
    ids.add(id);
    this.sweep();
    while (this.#entries.size > this.#opts.cap) {
      const oldest = this.#oldest();
      if (oldest === undefined) break;
      this.#delete(oldest.id);
      this.#evicted++;
    }
    this.#compact();
  }

  /**
   * True when a publish of `regId` at `version` is not newer than its withdrawal (refuse it). A
   * newer publish clears the tombstone: the registration lives again.
   */
  buries(key: string, regId: string, version: number): boolean {
    // Every publish asks: with no tombstone held it costs no string.
    if (this.#entries.size === 0) return false;
    const id = entryId(key, regId);
    const t = this.#entries.get(id);
    if (t === undefined) return false;
    if (this.#expired(t)) {
      this.#delete(id);
      return false;
    }
    if (version <= t.version) return true;
    this.#delete(id);
    return false;
  }

  /** A newer publish came through replication: the leader already let it pass. */
  clear(key: string, regId: string): void {
    this.#delete(entryId(key, regId));
  }

  /** The live tombstones of a slot, for a follower's initial copy. */
  inSlot(slot: number): KeyedTombstone[] {
    this.sweep();
    const out: KeyedTombstone[] = [];
    for (const id of this.#bySlot.get(slot) ?? []) {
      const t = this.#entries.get(id);
      if (t !== undefined) out.push({ key: t.key, registrationId: t.registrationId, version: t.version });
    }
    return out;
  }

  /** Forgets a slot's tombstones (the slot went to other servers, or is replaced by a copy). */
  dropSlot(slot: number): void {
    for (const id of this.#bySlot.get(slot) ?? []) this.#entries.delete(id);
    this.#bySlot.delete(slot);
    this.#compact();
  }

  /** Drops expired tombstones (oldest first, so it stops at the first live one). */
  sweep(): void {
    for (let t = this.#oldest(); t !== undefined && this.#expired(t); t = this.#oldest()) this.#delete(t.id);
  }

  /** The oldest entry still held, skipping the places of replaced or dropped ones. */
  #oldest(): Entry | undefined {
    while (this.#head < this.#order.length) {
      const t = this.#order[this.#head];
      if (t !== undefined && this.#entries.get(t.id) === t) return t;
      this.#head++;
    }
    return undefined;
  }

  /** Keeps the age order near the size of what is held: drops passed places, rebuilds when mostly stale. */
  #compact(): void {
    const waiting = this.#order.length - this.#head;
    if (waiting > 2 * this.#entries.size + 1024) {
      this.#order = [...this.#entries.values()].sort((a, b) => a.at - b.at);
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head > waiting) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
  }

  #expired(t: Entry): boolean {
    return this.#opts.now() - t.at >= this.#opts.ttlMs;
  }

  #delete(id: string): void {
    const t = this.#entries.get(id);
    if (t === undefined) return;
    this.#entries.delete(id);
    const ids = this.#bySlot.get(t.slot);
    ids?.delete(id);
    if (ids?.size === 0) this.#bySlot.delete(t.slot);
  }
}

function entryId(key: string, regId: string): string {
  return `${key}\u0000${regId}`;
}

/** How a data server configures its tombstones. */
export interface LiveTombstoneOptions {
  /** How long an unpublish is remembered (default {@link TOMBSTONE_MS}; see {@link tombstoneMsFor}). */
  readonly tombstoneMs?: number;
  /** Most tombstones held (default {@link TOMBSTONE_CAP}). */
  readonly tombstoneCap?: number;
  /** Live milliseconds for tombstone ages (default: the loop monitor's); injectable for tests. */
  readonly liveNow?: () => number;
}

/**
 * The tombstone life for a session grace period: twice the grace, and at least the default. A
 * stale copy of a withdrawn registration can sit in a session (its records, a retry, a migration's
 * collect) until that session's connection or link is given up, which the grace bounds.
 */
export function tombstoneMsFor(sessionGraceMs: number): number {
  return Math.max(TOMBSTONE_MS, 2 * sessionGraceMs);
}

/**
 * Tombstones aged by live time, so a stall of this process never shortens their life. Starts the
 * loop monitor unless a clock is given; `release` stops it again.
 */
export function liveTombstones(opts: LiveTombstoneOptions): { tombstones: Tombstones; release: () => void } {
  const injected = opts.liveNow;
  if (injected === undefined) loopMonitor.start();
  const tombstones = new Tombstones({
    ttlMs: opts.tombstoneMs ?? TOMBSTONE_MS,
    cap: opts.tombstoneCap ?? TOMBSTONE_CAP,
    now: injected ?? (() => loopMonitor.liveNow()),
  });
  let held = injected === undefined;
  const release = (): void => {
    if (held) loopMonitor.stop();
    held = false;
  };
  return { tombstones, release };
}

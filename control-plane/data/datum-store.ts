/**
 * The data layer's storage: per service key, the publishers of every node, and a datum version that
 * only grows. In memory only: the agents are the source of truth and re-send after any failure.
 */
import { registrationId, type Instance } from '../../proto/instance.js';
import type { VersionClock } from '../../proto/version.js';

/** One publisher as stored: the instance, its registration version, and who wrote it. */
export interface Publisher {
  readonly registrationId: string;
  readonly instance: Instance;
  /** The agent's version of this registration; older writes are ignored. */
  readonly version: number;
  /** The session connection that wrote it; dropped with that connection after its grace period. */
  readonly owner: string;
}

/** An immutable view of one datum, safe to hand out and to serialise once for many pushes. */
export interface DatumSnapshot {
  readonly key: string;
  readonly version: number;
  readonly instances: readonly Instance[];
}

export type PublishOutcome = 'applied' | 'owner-changed' | 'unchanged' | 'stale';

class Datum {
  readonly publishers = new Map<string, Publisher>();
  #snapshot: DatumSnapshot | undefined;

  constructor(
    readonly key: string,
    public version: number,
  ) {}

  snapshot(): DatumSnapshot {
    this.#snapshot ??= {
      key: this.key,
      version: this.version,
      instances: [...this.publishers.values()].map((p) => p.instance),
    };
    return this.#snapshot;
  }

  changed(version: number): void {
    this.version = version;
    this.#snapshot = undefined;
  }
}

/** Per-key datums. Work per change is proportional to that key's publishers only. */
export class DatumStore {
  readonly #datums = new Map<string, Datum>();
  /**
   * owner → registration IDs it wrote → the keys holding them, for dropping a dead connection in
   * O(its size). A set of keys, because a registration renamed under the same ID sits under its old and
   * its new name until the old one is withdrawn.
   */
  readonly #byOwner = new Map<string, Map<string, Set<string>>>();
  readonly #clock: VersionClock;

  constructor(clock: VersionClock) {
    this.#clock = clock;
  }

  get size(): number {
    return this.#datums.size;
  }

  /** Stores a publisher unless an equal or newer version of it is already there. */
  publish(p: Publisher): PublishOutcome {
    const key = p.instance.service;
    const d = this.#datum(key);
    const old = d.publishers.get(p.registrationId);
    if (old !== undefined && p.version < old.version) return 'stale';
    if (old !== undefined && p.version === old.version) {
      if (old.owner === p.owner) return 'unchanged';
      // The same registration re-sent over a new connection: adopt it without a datum change.
      this.#unindex(old.owner, p.registrationId, key);
      d.publishers.set(p.registrationId, { ...old, owner: p.owner });
      this.#index(p.owner, p.registrationId, key);
      return 'owner-changed';
    }
    if (old !== undefined) this.#unindex(old.owner, p.registrationId, key);
    d.publishers.set(p.registrationId, p);
    this.#index(p.owner, p.registrationId, key);
    d.changed(this.#clock.next(d.version));
    return 'applied';
  }

  /** Removes a publisher if `version` is at least the stored one. True when the datum changed. */
  unpublish(key: string, regId: string, version: number): boolean {
    const d = this.#datums.get(key);
    const old = d?.publishers.get(regId);
    if (d === undefined || old === undefined || version < old.version) return false;
    d.publishers.delete(regId);
    this.#unindex(old.owner, regId, key);
    d.changed(this.#clock.next(d.version));
    return true;
  }

  /** Removes every publisher still owned by `owner`; returns the keys that changed. */
  dropOwner(owner: string): string[] {
    const regs = this.#byOwner.get(owner);
    if (regs === undefined) return [];
    this.#byOwner.delete(owner);
    const changed = new Set<string>();
    for (const [regId, keys] of regs) {
      for (const key of keys) {
        const d = this.#datums.get(key);
        if (d?.publishers.get(regId)?.owner !== owner) continue;
        d.publishers.delete(regId);
        changed.add(key);
      }
    }
    for (const key of changed) {
      const d = this.#datums.get(key);
      if (d !== undefined) d.changed(this.#clock.next(d.version));
    }
    return [...changed];
  }

  /** The datum of `key`; an unknown key gets an empty datum with a fresh version. */
  get(key: string): DatumSnapshot {
    return this.#datum(key).snapshot();
  }

  version(key: string): number | undefined {
    return this.#datums.get(key)?.version;
  }

  /** Gives every datum a new version (after a rebuild), so subscribers receive a complete push. */
  bumpAll(): string[] {
    const keys: string[] = [];
    for (const d of this.#datums.values()) {
      d.changed(this.#clock.next(d.version));
      keys.push(d.key);
    }
    return keys;
  }

  /** Service name → union of tags, for services with at least one instance. */
  catalog(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const d of this.#datums.values()) {
      if (d.publishers.size === 0) continue;
      const tags = new Set<string>();
      for (const p of d.publishers.values()) for (const t of p.instance.tags) tags.add(t);
      out[d.key] = [...tags].sort();
    }
    return out;
  }

  /** Number of publishers across all datums. */
  publisherCount(): number {
    let n = 0;
    for (const d of this.#datums.values()) n += d.publishers.size;
    return n;
  }

  #datum(key: string): Datum {
    let d = this.#datums.get(key);
    if (d === undefined) {
      d = new Datum(key, this.#clock.next());
      this.#datums.set(key, d);
    }
    return d;
  }

  #index(owner: string, regId: string, key: string): void {
    let m = this.#byOwner.get(owner);
    if (m === undefined) {
      m = new Map();
      this.#byOwner.set(owner, m);
    }
    let keys = m.get(regId);
    if (keys === undefined) {
      keys = new Set();
      m.set(regId, keys);
    }
    keys.add(key);
  }

  #unindex(owner: string, regId: string, key: string): void {
    const m = this.#byOwner.get(owner);
    const keys = m?.get(regId);
    if (m === undefined || keys === undefined) return;
    keys.delete(key);
    if (keys.size === 0) m.delete(regId);
    if (m.size === 0) this.#byOwner.delete(owner);
  }
}

export { registrationId };

/**
 * The data layer's storage: per service key, the publishers of every node, and a datum version that
 * only grows. Keys are grouped by slot so a slot can be exported, replaced or dropped as a unit.
 * In memory only: the agents are the source of truth and re-send after any failure.
 *
 * Every mutation is reported to `onOp` (the replication stream to the slot's followers). A
 * withdrawal leaves a tombstone ({@link Tombstones}) that refuses older publishes of it.
 */
import { sharedInstancePool, type InstancePool } from '../../proto/runtime/intern.js';
import { slotOf } from '../../proto/slot-table.js';
import type { KeyedTombstone, ReplicatedDatum, ReplicationOp } from '../../proto/replication-link.js';
import type { VersionClock } from '../../proto/version.js';
import type { PublishOutcome, UnpublishOutcome } from '../../proto/write-outcomes.js';
import { Datum, type DatumSnapshot, type Publisher } from './datum.js';
import { TOMBSTONE_CAP, TOMBSTONE_MS, Tombstones } from './tombstones.js';

export type { DatumSnapshot, Publisher };

/** What storing a publisher came to (the wire's outcomes, less the data server's `stale_epoch`). */
export type StoreOutcome = Exclude<PublishOutcome, 'stale_epoch'>;

/** What removing a publisher came to (see {@link UnpublishOutcome}). */
export type RemoveOutcome = Exclude<UnpublishOutcome, 'stale_epoch'>;

export type OpSink = (op: Omit<ReplicationOp, 'sentAt'>) => void;

/** Per-key datums. Work per change is proportional to that key's publishers only. */
export class DatumStore {
  readonly #datums = new Map<string, Datum>();
  readonly #bySlot = new Map<number, Set<string>>();
  /**
   * owner → key → registrations it wrote there, for dropping a dead connection in O(its size). By
   * key, not one key per registration: a registration renamed under the same ID sits under its old
   * and its new name until the old one is withdrawn. The strings are the ones the datums hold.
   */
  readonly #byOwner = new Map<string, Map<string, Set<string>>>();
  readonly #clock: VersionClock;
  /** Every stored publisher goes through it: one copy of the strings and values instances share. */
  readonly #pool: InstancePool;
  /**
   * The version served for a key that has no datum (nobody published it here), per slot. Such
   * reads store nothing, so the version cannot live with the key. It comes from the same clock as
   * datum versions: a datum created later gets `clock.next()`, greater than every empty version
   * handed out before, so a subscriber never sees a version go backwards (invariant 2). It is
   * renewed when a slot becomes complete, so subscribers of unknown keys get one authoritative
   * push then, as subscribers of stored datums do. At most one entry per slot: bounded by the slot
   * count, never by the names readers make up.
   */
  readonly #emptyVersions = new Map<number, number>();
  #bornVersion: number | undefined;
  #slotCount: number;
  onOp: OpSink = () => undefined;
  /**
   * While set (a data server's warm-up), writes change a datum's content but not its version: what
   * is served then is incomplete, and a new version per re-sent batch would push the whole datum to
   * every subscriber again and again. Subscribers get the content when warm-up ends and every datum
   * gets a new version ({@link bumpSlots}); a datum created meanwhile still gets a new version.
   */
  holdVersions = false;

  /** Withdrawals remembered so that an older publish arriving late cannot resurrect them. */
  readonly tombstones: Tombstones;

  constructor(
    clock: VersionClock,
    slotCount: number,
    pool: InstancePool = sharedInstancePool(),
    tombstones = new Tombstones({ ttlMs: TOMBSTONE_MS, cap: TOMBSTONE_CAP, now: () => performance.now() }),
  ) {
    this.#clock = clock;
    this.#slotCount = slotCount;
    this.#pool = pool;
    this.tombstones = tombstones;
  }

  get size(): number {
    return this.#datums.size;
  }

  get slotCount(): number {
    return this.#slotCount;
  }

  slotOf(key: string): number {
    return slotOf(key, this.#slotCount);
  }

  /**
   * Stores a publisher unless an equal or newer version of it is already there (`stale`), or it was
   * withdrawn at an equal or newer version (`superseded`: its tombstone).
   */
  publish(written: Publisher): StoreOutcome {
    const regId = written.registrationId;
    if (this.tombstones.buries(written.instance.service, regId, written.version)) return 'superseded';
    const d = this.#datum(written.instance.service);
    const key = d.key;
    const old = d.publishers.get(regId);
    if (old !== undefined && written.version < old.version) return 'stale';
    if (old !== undefined && written.version === old.version) {
      if (old.owner === written.owner) return 'unchanged';
      // The same registration re-sent over a new connection: adopt it without a datum change.
      this.#unindex(old.owner, regId, key);
      const adopted = { ...old, owner: this.#pool.string(written.owner) };
      d.put(adopted);
      this.#index(adopted.owner, old.registrationId, key);
      this.onOp({ slot: d.slot, key, version: d.version, put: adopted });
      return 'owner-changed';
    }
    if (old !== undefined) this.#unindex(old.owner, regId, key);
    const p = this.#compact(written);
    d.put(p);
    this.#index(p.owner, p.registrationId, key);
    d.changed(this.#nextVersion(d));
    this.onOp({ slot: d.slot, key, version: d.version, put: p });
    return 'applied';
  }

  /**
   * Removes a publisher if `version` is at least the stored one (`removed`: the datum changed). The
   * withdrawal leaves a tombstone, also when nothing was held (`absent`: its publish may be late).
   */
  unpublish(key: string, regId: string, version: number): RemoveOutcome {
    const d = this.#datums.get(key);
    const old = d?.publishers.get(regId);
    if (old !== undefined && version < old.version) return 'stale';
    const slot = this.slotOf(key);
    this.tombstones.add(key, slot, regId, version);
    const tomb = { registrationId: regId, version };
    if (d === undefined || old === undefined) {
      this.onOp({ slot, key, version: this.readVersion(key), tomb });
      return 'absent';
    }
    this.#remove(d, regId, old.owner);
    d.changed(this.#nextVersion(d));
    this.onOp({ slot, key, version: d.version, del: regId, tomb });
    return 'removed';
  }

  /** Removes every publisher still owned by `owner`; returns the keys that changed. */
  dropOwner(owner: string, onRemoved?: (regId: string, version: number, key: string) => void): string[] {
    const regs = this.#byOwner.get(owner);
    if (regs === undefined) return [];
    this.#byOwner.delete(owner);
    const changed = new Map<string, string[]>();
    for (const [key, regIds] of regs) {
      const d = this.#datums.get(key);
      if (d === undefined) continue;
      const removed: string[] = [];
      for (const regId of regIds) {
        const p = d.publishers.get(regId);
        if (p?.owner !== owner) continue;
        onRemoved?.(regId, p.version, key);
        d.del(regId);
        removed.push(regId);
      }
      if (removed.length > 0) changed.set(key, removed);
    }
    for (const [key, regIds] of changed) {
      const d = this.#datums.get(key);
      if (d === undefined) continue;
      d.changed(this.#nextVersion(d));
      for (const regId of regIds) this.onOp({ slot: d.slot, key, version: d.version, del: regId });
    }
    return [...changed.keys()];
  }

  /** Owners whose ID starts with `prefix` (the connections of one session). */
  ownersWithPrefix(prefix: string): string[] {
    return [...this.#byOwner.keys()].filter((o) => o.startsWith(prefix));
  }

  /**
   * The datum of `key`. An unknown key is answered with an empty snapshot of version 0 that is NOT
   * stored: reading a name nobody published must leave nothing behind ({@link readVersion} gives
   * such reads a version that fits the datum versions).
   */
  get(key: string): DatumSnapshot {
    return this.#datums.get(key)?.snapshot() ?? { key, version: 0, instances: [] };
  }

  version(key: string): number | undefined {
    return this.#datums.get(key)?.version;
  }

  /** The version a read of `key` is answered with: its datum's, or its slot's empty version. */
  readVersion(key: string): number {
    const stored = this.#datums.get(key)?.version;
    if (stored !== undefined) return stored;
    const empty = this.#emptyVersions.get(this.slotOf(key));
    if (empty !== undefined) return empty;
    this.#bornVersion ??= this.#clock.next();
    return this.#bornVersion;
  }

  /** Gives the slots' unknown keys a new empty version (the slots just became complete). */
  renewEmptyVersions(slots: Iterable<number>): void {
    for (const slot of slots) this.#emptyVersions.set(slot, this.#clock.next());
  }

  keysInSlot(slot: number): string[] {
    return [...(this.#bySlot.get(slot) ?? [])];
  }

  /** Gives every datum of the given slots a new version, so subscribers receive a fresh push. */
  bumpSlots(slots: Iterable<number>): string[] {
    const keys: string[] = [];
    for (const slot of slots) {
      for (const key of this.keysInSlot(slot)) {
        const d = this.#datums.get(key);
        if (d === undefined) continue;
        d.changed(this.#clock.next(d.version));
        this.onOp({ slot, key, version: d.version });
        keys.push(key);
      }
    }
    return keys;
  }

  /** Everything held for a slot, for a follower's initial copy. */
  exportSlot(slot: number): ReplicatedDatum[] {
    return this.keysInSlot(slot).flatMap((key) => {
      const d = this.#datums.get(key);
      return d === undefined ? [] : [{ key, version: d.version, publishers: [...d.publishers.values()] }];
    });
  }

  /** Replaces a slot's content (and tombstones) with a leader's copy. */
  replaceSlot(
    slot: number,
    datums: readonly ReplicatedDatum[],
    tombstones: readonly KeyedTombstone[] = [],
  ): void {
    this.dropSlot(slot);
    for (const t of tombstones) this.tombstones.add(t.key, slot, t.registrationId, t.version);
    for (const rd of datums) {
      const d = this.#datum(rd.key, rd.version);
      for (const written of rd.publishers) {
        const p = this.#compact(written);
        d.put(p);
        this.#index(p.owner, p.registrationId, rd.key);
      }
      d.changed(Math.max(rd.version, d.version));
      this.#clock.observe(rd.version);
    }
  }

  /** Applies one operation of a leader's replication stream. */
  applyOp(op: ReplicationOp): void {
    this.#clock.observe(op.version);
    if (op.tomb !== undefined) this.tombstones.add(op.key, op.slot, op.tomb.registrationId, op.tomb.version);
    // A tombstone alone (a withdrawal of something not held) changes no datum.
    if (op.put === undefined && op.del === undefined && op.tomb !== undefined) return;
    const d = this.#datum(op.key, op.version);
    if (op.put !== undefined) {
      this.tombstones.clear(op.key, op.put.registrationId);
      const p = this.#compact(op.put);
      const old = d.publishers.get(p.registrationId);
      if (old !== undefined) this.#unindex(old.owner, p.registrationId, op.key);
      d.put(p);
      this.#index(p.owner, p.registrationId, op.key);
    }
    if (op.del !== undefined) {
      const old = d.publishers.get(op.del);
      if (old !== undefined) this.#remove(d, op.del, old.owner);
    }
    // Always: a leader holding versions (warm-up) changes content under the same version.
    d.changed(Math.max(op.version, d.version));
  }

  dropSlot(slot: number): void {
    for (const key of this.keysInSlot(slot)) {
      const d = this.#datums.get(key);
      if (d === undefined) continue;
      for (const p of d.publishers.values()) this.#unindex(p.owner, p.registrationId, key);
      this.#datums.delete(key);
    }
    this.#bySlot.delete(slot);
    this.tombstones.dropSlot(slot);
  }

  /** Service name → union of tags, for services with at least one instance in `slots`. */
  catalog(isServed: (slot: number) => boolean): Record<string, string[]> {
    // O(services): the tags of each datum are counted as publishers come and go.
    const out: Record<string, string[]> = {};
    for (const d of this.#datums.values()) {
      if (d.publishers.size === 0 || !isServed(d.slot)) continue;
      out[d.key] = [...d.tagCounts.keys()].sort();
    }
    return out;
  }

  /** Number of publishers across all datums. */
  publisherCount(): number {
    let n = 0;
    for (const d of this.#datums.values()) n += d.publishers.size;
    return n;
  }

  /** The datum of `key`, created (at `version`: a leader's, or else a new one) when missing. */
  #datum(key: string, version?: number): Datum {
    let d = this.#datums.get(key);
    if (d === undefined) {
      const slot = this.slotOf(key);
      d = new Datum(key, slot, version ?? this.#clock.next());
      this.#datums.set(key, d);
      let keys = this.#bySlot.get(slot);
      if (keys === undefined) {
        keys = new Set();
        this.#bySlot.set(slot, keys);
      }
      keys.add(key);
    }
    return d;
  }

  /** The publisher as stored: its instance compacted, its owner interned, nothing else kept. */
  #compact(p: Publisher): Publisher {
    return {
      registrationId: p.registrationId,
      instance: this.#pool.instance(p.instance),
      version: p.version,
      owner: this.#pool.string(p.owner),
    };
  }

  #nextVersion(d: Datum): number {
    return this.holdVersions ? d.version : this.#clock.next(d.version);
  }

  #remove(d: Datum, regId: string, owner: string): void {
    d.del(regId);
    this.#unindex(owner, regId, d.key);
  }

  #index(owner: string, regId: string, key: string): void {
    let m = this.#byOwner.get(owner);
    if (m === undefined) {
      m = new Map();
      this.#byOwner.set(owner, m);
    }
    let regIds = m.get(key);
    if (regIds === undefined) {
      regIds = new Set();
      m.set(key, regIds);
    }
    regIds.add(regId);
  }

  #unindex(owner: string, regId: string, key: string): void {
    const m = this.#byOwner.get(owner);
    const regIds = m?.get(key);
    if (m === undefined || regIds === undefined) return;
    regIds.delete(regId);
    if (regIds.size === 0) m.delete(key);
    if (m.size === 0) this.#byOwner.delete(owner);
  }
}

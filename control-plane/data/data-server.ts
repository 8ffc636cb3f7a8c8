/**
 * A data server's logic, independent of transport: the datums of the slots it leads, change
 * notifications to interested sessions, and the slot states of the table it was given.
 *
 * Slot states: a slot it leads is `migrating` until the publishers of every session were collected
 * (a new leader rebuilds from its replica plus the sessions), then `ready`. What a migrating slot
 * serves is marked incomplete: subscribers add to what they hold rather than replace it. The same
 * holds for every slot during the warm-up after the server starts, while agents are still
 * re-sending. When a slot becomes complete, all its datums get new versions: one authoritative push.
 */
import type { AdminDatum } from '../../proto/admin-api.js';
import type { OwnedPublisher } from '../../proto/cluster-records.js';
import { MeshregError } from '../../proto/errors.js';
import type { ReplicaSlot, ReplicationOp } from '../../proto/replication-link.js';
import type { Logger } from '../../proto/runtime/log.js';
import type { SlotTable } from '../../proto/slot-table.js';
import { VersionClock } from '../../proto/version.js';
import { ok, type Ok } from '../../proto/result.js';
import type { PublishOutcome, UnpublishOutcome } from '../../proto/write-outcomes.js';
import { DatumStore, type StoreOutcome } from './datum-store.js';
import { liveTombstones, type LiveTombstoneOptions } from './tombstones.js';
import { DataCatalog } from './data-catalog.js';
import { Warmup, type WarmupOptions } from './warmup.js';
import { DataWatchers } from './data-watchers.js';
import type {
  CatalogView,
  ChangeListener,
  DataApi,
  DataWatch,
  DatumView,
  PublishItem,
  UnpublishItem,
} from '../link/data-api.js';
import type { DrainedEvent } from '../../proto/console-link.js';
import { DrainedMarks } from '../console/drained.js';

/** Warm-up ({@link WarmupOptions}): least length, quiet period, longest, what it waits for. */
export interface DataServerOptions extends LiveTombstoneOptions, WarmupOptions {
  readonly id: string;
  readonly slotCount: number;
  /** During warm-up, changes are notified at most this often (0: each turn). */
  readonly warmupNotifyMs?: number;
  /** How long catalog changes are gathered before one catalog notification. */
  readonly catalogDebounceMs: number;
  readonly logger: Logger;
  readonly clock?: VersionClock;
}

export type SlotState = 'migrating' | 'ready' | 'follower';

/** What a new table asks of the transport layer. */
export interface TablePlan {
  /** Slots this server now leads that it did not lead before: collect from sessions, then finish. */
  readonly migrate: readonly number[];
  /** Leader ID → slots this server follows under it. */
  readonly follow: ReadonlyMap<string, readonly number[]>;
}

export class DataServer implements DataApi {
  readonly id: string;
  readonly store: DatumStore;
  readonly #clock: VersionClock;
  readonly #log: Logger;
  readonly #watchers: DataWatchers;
  readonly #states = new Map<number, SlotState>();
  #table: SlotTable | undefined;
  /**
   * Removals seen while a slot migrates (registration → version removed), so that a publisher
   * collected from a session before its removal is not brought back when the migration finishes.
   */
  readonly #removedDuringMigration = new Map<string, number>();
  readonly #warmup: Warmup;
  readonly #catalog: DataCatalog;
  /** Instances drained by an operator: marked draining in every datum this server answers. */
  readonly drained = new DrainedMarks();
  readonly #releaseTombstones: () => void;
  /** Receives every change of a slot this server leads (forwarded to the slot's followers). */
  replicationSink: (op: ReplicationOp) => void = () => undefined;

  constructor(opts: DataServerOptions) {
    this.id = opts.id;
    this.#clock = opts.clock ?? new VersionClock();
    const { tombstones, release } = liveTombstones(opts);
    this.#releaseTombstones = release;
    this.store = new DatumStore(this.#clock, opts.slotCount, undefined, tombstones);
    this.store.onOp = (op) => {
      if (this.#leads(op.slot)) this.replicationSink({ ...op, sentAt: Date.now() });
    };
    this.#log = opts.logger.child({ role: 'data', dataId: opts.id });
    this.#watchers = new DataWatchers({
      warmupNotifyMs: opts.warmupNotifyMs ?? 0,
      warming: () => this.warming,
    });
    this.#catalog = new DataCatalog({
      clock: this.#clock,
      debounceMs: opts.catalogDebounceMs,
      compute: () => ({
        services: this.store.catalog((slot) => this.#leads(slot)),
        complete: !this.warming && [...this.#states.values()].every((s) => s !== 'migrating'),
      }),
      announce: (version) => {
        this.#watchers.announceCatalog(version);
      },
    });
    this.#warmup = new Warmup(opts, () => {
      this.#endWarmup();
    });
    this.store.holdVersions = this.#warmup.on;
  }

  get warming(): boolean {
    return this.#warmup.on;
  }

  /** A session connected and is about to re-send: the warm-up's quiet period starts again. */
  noteSessionConnected(): void {
    this.#warmup.noteWrite();
  }

  get epoch(): number {
    return this.#table?.epoch ?? 0;
  }

  /** What this server holds for `key`, whatever its role for the slot (the admin API's replica view). */
  replicaOf(key: string): AdminDatum {
    const slot = this.store.slotOf(key);
    const state = this.#states.get(slot);
    // Reading never creates a datum: an unknown key is reported as absent (version 0).
    const d = this.store.get(key);
    return { dataId: this.id, slot, state: state ?? 'none', epoch: this.epoch, ...d };
  }

  /** True when the table in force gives this server no slot to lead or follow. */
  holdsNoSlot(): boolean {
    return this.#table !== undefined && this.#states.size === 0;
  }

  slotState(slot: number): SlotState | undefined {
    return this.#states.get(slot);
  }

  stats(): Record<string, number | boolean> {
    const n: Record<SlotState, number> = { ready: 0, migrating: 0, follower: 0 };
    for (const s of this.#states.values()) n[s]++;
    return {
      datums: this.store.size,
      publishers: this.store.publisherCount(),
      sessions: this.#watchers.size,
      // Keys sessions are interested in: follows what agents watch, never what they once read.
      interests: this.#watchers.watchedKeys().size,
      warming: this.warming,
      epoch: this.epoch,
      leading: n.ready,
      migrating: n.migrating,
      following: n.follower,
      tombstones: this.store.tombstones.size,
      tombstonesEvicted: this.store.tombstones.evicted,
    };
  }

  /** Applies a newer table and says what the transport must do: migrate led slots, follow others. */
  applyTable(table: SlotTable): TablePlan | undefined {
    if (this.#table !== undefined && table.epoch <= this.#table.epoch) return undefined;
    if (table.slotCount !== this.store.slotCount) {
      this.#log.error('slot table has another slot count; ignored', {
        theirs: table.slotCount,
        ours: this.store.slotCount,
      });
      return undefined;
    }
    const prev = this.#table;
    this.#table = table;
    const migrate: number[] = [];
    const follow = new Map<string, number[]>();
    for (const slot of table.slots) {
      const before = prev?.slots[slot.id];
      if (slot.leader === this.id) {
        const wasLeader = before?.leader === this.id && before.leaderEpoch === slot.leaderEpoch;
        if (!wasLeader || this.#states.get(slot.id) === 'migrating') {
          this.#states.set(slot.id, 'migrating');
          migrate.push(slot.id);
        }
      } else if (slot.followers.includes(this.id)) {
        this.#states.set(slot.id, 'follower');
        follow.set(slot.leader, [...(follow.get(slot.leader) ?? []), slot.id]);
      } else if (this.#states.has(slot.id)) {
        this.#states.delete(slot.id);
        this.store.dropSlot(slot.id);
      }
    }
    this.#log.info('slot table applied', {
      epoch: table.epoch,
      migrate: migrate.length,
      follow: [...follow.values()].flat().length,
    });
    return { migrate, follow };
  }

  /** Finishes the migration of `slots` with the publishers collected from the sessions. */
  finishMigration(slots: readonly number[], collected: readonly OwnedPublisher[]): void {
    const wanted = new Set(slots.filter((s) => this.#states.get(s) === 'migrating'));
    for (const p of collected) {
      const removedAt = this.#removedDuringMigration.get(p.registrationId);
      if (removedAt !== undefined && removedAt >= p.version) continue;
      if (wanted.has(this.store.slotOf(p.instance.service))) this.#applyPublish(p);
    }
    for (const s of wanted) this.#states.set(s, 'ready');
    if (![...this.#states.values()].includes('migrating')) this.#removedDuringMigration.clear();
    if (!this.warming) this.#announce(wanted);
    this.#log.info('slots migrated', { slots: wanted.size, collected: collected.length });
  }

  /** Re-applies the publishers of a session that came back after they were dropped (ready slots). */
  restore(collected: readonly OwnedPublisher[]): void {
    for (const p of collected)
      if (this.#states.get(this.store.slotOf(p.instance.service)) === 'ready') this.#applyPublish(p);
  }

  /** Loads a leader's copy of slots this server follows (their datums and tombstones). */
  loadReplica(slots: readonly ReplicaSlot[]): void {
    for (const s of slots)
      if (this.#states.get(s.slot) === 'follower') this.store.replaceSlot(s.slot, s.datums, s.tombstones);
  }

  applyReplica(op: ReplicationOp): void {
    if (this.#states.get(op.slot) === 'follower') this.store.applyOp(op);
  }

  /** Drops the publishers of every connection of a session that did not come back. */
  dropSession(sessionId: string): void {
    for (const owner of this.store.ownersWithPrefix(`${sessionId}:`)) void this.dropOwner(owner);
  }

  /** Stores each item whose slot this server leads at `epoch`; the others are `stale_epoch`. */
  publish(
    owner: string,
    items: readonly PublishItem[],
    epoch: number,
    traceparent?: string,
  ): Promise<Ok<PublishOutcome[]>> {
    if (items.length > 0) this.#warmup.noteWrite();
    const outcomes = items.map((item) =>
      this.#mayWrite(item.instance.service, epoch)
        ? this.#applyPublish({ ...item, owner }, traceparent)
        : 'stale_epoch',
    );
    return Promise.resolve(ok(outcomes));
  }

  /** Removes each item whose slot this server leads at `epoch`; the others are `stale_epoch`. */
  unpublish(items: readonly UnpublishItem[], epoch: number): Promise<Ok<UnpublishOutcome[]>> {
    const outcomes = items.map((item): UnpublishOutcome => {
      if (!this.#mayWrite(item.key, epoch)) return 'stale_epoch';
      this.#noteRemoval(item.key, item.registrationId, item.version);
      const outcome = this.store.unpublish(item.key, item.registrationId, item.version);
      if (outcome === 'removed') this.#changed(item.key);
      return outcome;
    });
    return Promise.resolve(ok(outcomes));
  }

  dropOwner(owner: string): Promise<void> {
    const keys = this.store.dropOwner(owner, (regId, version, key) => {
      this.#noteRemoval(key, regId, version);
    });
    if (keys.length > 0)
      this.#log.info('dropped publishers of a closed connection', { owner, services: keys.length });
    for (const key of keys) this.#changed(key);
    return Promise.resolve();
  }

  fetch(key: string): Promise<DatumView> {
    const slot = this.#checkLeads(key);
    // A key nobody published is answered, not stored: reads leave nothing behind.
    const s = this.store.get(key);
    const complete = !this.warming && this.#states.get(slot) === 'ready';
    const version = this.store.readVersion(key);
    return Promise.resolve({ key: s.key, version, complete, instances: this.drained.mark(s.instances) });
  }

  /**
   * Adopts the operator's drained nodes and instances: the datums of led slots holding one that
   * changed state get a new version, so subscribers are pushed the marked (or restored) list.
   */
  applyDrained(next: DrainedEvent): void {
    const touched = this.drained.apply(next);
    if (touched === undefined || touched.size === 0) return;
    const slots = new Set<number>();
    for (const [slot, state] of this.#states) {
      if (state !== 'ready') continue;
      for (const key of this.store.keysInSlot(slot))
        if (this.store.get(key).instances.some((i) => touched.has(i.node))) slots.add(slot);
    }
    for (const key of this.store.bumpSlots(slots)) this.#changed(key);
  }

  fetchCatalog(): Promise<CatalogView> {
    return Promise.resolve(this.#catalog.view());
  }

  versions(keys: readonly string[]): Promise<ReadonlyMap<string, number>> {
    const out = new Map<string, number>();
    for (const k of keys) if (this.#leads(this.store.slotOf(k))) out.set(k, this.store.readVersion(k));
    return Promise.resolve(out);
  }

  watch(sessionId: string, listener: ChangeListener): DataWatch {
    return this.#watchers.watch(sessionId, listener);
  }

  close(): void {
    this.#releaseTombstones();
    this.#warmup.stop();
    this.#catalog.close();
    this.#watchers.clear();
  }

  #applyPublish(p: OwnedPublisher, traceparent?: string): StoreOutcome {
    const outcome = this.store.publish(p);
    if (outcome === 'applied') this.#changed(p.instance.service, traceparent);
    return outcome;
  }

  /** Remembers a removal from a migrating slot (see {@link finishMigration}). */
  #noteRemoval(key: string, regId: string, version: number): void {
    if (this.#states.get(this.store.slotOf(key)) !== 'migrating') return;
    this.#removedDuringMigration.set(regId, Math.max(version, this.#removedDuringMigration.get(regId) ?? 0));
  }

  #leads(slot: number): boolean {
    const s = this.#states.get(slot);
    return s === 'ready' || s === 'migrating';
  }

  /** This server leads `key`'s slot, and a caller at `epoch` does not route by an older table. */
  #mayWrite(key: string, epoch: number): boolean {
    return epoch >= this.epoch && this.#leads(this.store.slotOf(key));
  }

  #checkLeads(key: string): number {
    const slot = this.store.slotOf(key);
    if (!this.#leads(slot))
      throw new MeshregError('stale_epoch', `${this.id} does not lead slot ${slot} at epoch ${this.epoch}`);
    return slot;
  }

  #endWarmup(): void {
    this.store.holdVersions = false;
    const ready = new Set([...this.#states].filter(([, s]) => s === 'ready').map(([slot]) => slot));
    this.#log.info('warm-up over: datums are now authoritative', { slots: ready.size });
    this.#announce(ready);
    // The complete versions go out now, not at the end of a warm-up notify interval.
    this.#watchers.flush();
  }

  /** Gives the slots' datums new versions and notifies: their next push is complete. */
  #announce(slots: ReadonlySet<number>): void {
    for (const key of this.store.bumpSlots(slots)) this.#changed(key);
    if (slots.size > 0) {
      this.store.renewEmptyVersions(slots);
      // Keys watched but never published: their subscribers hold an incomplete empty push.
      for (const key of this.#watchers.watchedKeys())
        if (this.store.version(key) === undefined && slots.has(this.store.slotOf(key))) this.#changed(key);
    }
    this.#catalog.recompute(true);
  }

  #changed(key: string, traceparent?: string): void {
    this.#watchers.changed(key, this.store.readVersion(key), traceparent);
    this.#catalog.changed();
  }
}

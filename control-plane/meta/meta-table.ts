/**
 * The meta's slot table: the one in force, the store revision it was read at, and its arrangement
 * over the live data servers. Arranging reads the store again and saves fenced on the revision last
 * read; the store announces the saved table to every meta, which adopts it when newer and pushes it
 * to its members.
 */
import type { Logger } from '../../proto/runtime/log.js';
import { meter } from '../../proto/runtime/telemetry.js';
import type { SlotTable } from '../../proto/slot-table.js';
import { VersionClock } from '../../proto/version.js';
import type { MetaStore } from './meta-store.js';
import { arrangeSlots } from './slot-arranger.js';

/** How the slots are arranged: how many, followers per slot, leader moves per round. */
export interface MetaTableSizes {
  readonly slotCount: number;
  readonly followers: number;
  readonly maxLeaderMoves: number;
}

/** What the table needs of its meta. */
export interface MetaTableDeps {
  readonly logger: Logger;
  /** The store, once the meta started. */
  readonly store: () => MetaStore | undefined;
  /** The data servers slots may be given to (live and not draining). */
  readonly liveData: () => string[];
  /** Pushes a newly adopted table to the members. */
  readonly emit: (table: SlotTable) => void;
}

export class MetaTable {
  readonly #sizes: MetaTableSizes;
  readonly #deps: MetaTableDeps;
  readonly #clock = new VersionClock();
  #table: SlotTable | undefined;
  /** The store's revision of the table last read: what the next arrangement is fenced on. */
  #revision = '0';
  #saving = false;
  readonly #leaderMoves = meter().createCounter('meshreg.meta.leader_moves', {
    description: 'Slot leader changes made by arrangement',
  });

  constructor(sizes: MetaTableSizes, deps: MetaTableDeps) {
    this.#sizes = sizes;
    this.#deps = deps;
  }

  /** The table in force, if any. */
  get current(): SlotTable | undefined {
    return this.#table;
  }

  /** The store's revision of the table last read. */
  get revision(): string {
    return this.#revision;
  }

  /** What the store announced: its revision, and the table when there is one. */
  adopt(t: SlotTable | undefined, revision: string): void {
    // Adopted even when older than ours: the leader has seen what is stored and may replace it.
    this.#revision = revision;
    if (t !== undefined) this.#apply(t);
  }

  /** Arranges the slots and saves the table when it changes (one arrangement at a time). */
  async arrange(): Promise<void> {
    if (this.#saving || this.#next() === undefined) return;
    this.#saving = true;
    try {
      // Arranged from what the store holds now: after an outage the watches may lag, and a member
      // list read before a data server joined would take its slots away while it is alive.
      const store = this.#deps.store();
      if (store === undefined || !(await store.refresh())) return;
      const next = this.#next();
      if (next === undefined) return;
      // The store announces the saved table to every meta, this one included.
      const outcome = await store.saveTable(next, this.#revision);
      if (outcome !== 'saved')
        this.#deps.logger.warn('slot table not saved', {
          epoch: next.epoch,
          outcome,
          basedOn: this.#revision,
        });
    } finally {
      this.#saving = false;
    }
  }

  /** The table arranged over the live data servers, when it differs from the current one. */
  #next(): SlotTable | undefined {
    const next = arrangeSlots(this.#table, this.#deps.liveData(), {
      slotCount: this.#sizes.slotCount,
      followers: this.#sizes.followers,
      maxLeaderMoves: this.#table === undefined ? this.#sizes.slotCount : this.#sizes.maxLeaderMoves,
      nextEpoch: (prev) => this.#clock.next(prev),
    });
    return next === this.#table ? undefined : next;
  }

  #apply(next: SlotTable): void {
    if (this.#table !== undefined && next.epoch <= this.#table.epoch) return;
    const moves = next.slots.filter(
      (sl, i) => this.#table?.slots[i]?.leader !== undefined && this.#table.slots[i]?.leader !== sl.leader,
    ).length;
    this.#table = next;
    this.#leaderMoves.add(moves);
    const leaders = new Map<string, number>();
    for (const s of next.slots) leaders.set(s.leader, (leaders.get(s.leader) ?? 0) + 1);
    this.#deps.logger.info('slot table changed', {
      epoch: next.epoch,
      leaderMoves: moves,
      leaders: Object.fromEntries(leaders),
    });
    this.#deps.emit(next);
  }
}

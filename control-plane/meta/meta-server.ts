/**
 * Meta: membership of data servers and the slot table. This is the embedded, single-process store
 * (the default): membership is whatever registered here, and the table is recomputed on every change.
 */
import type { Logger } from '../../proto/log.js';
import type { SlotTable } from '../../proto/slot-table.js';
import { VersionClock } from '../../proto/version.js';
import { arrangeSlots } from './slot-arranger.js';

export interface MetaOptions {
  readonly slotCount: number;
  readonly followers: number;
  readonly maxLeaderMoves: number;
  readonly logger: Logger;
}

export type TableListener = (table: SlotTable) => void;

export class MetaServer {
  readonly #opts: MetaOptions;
  readonly #clock = new VersionClock();
  readonly #dataServers = new Set<string>();
  readonly #listeners = new Set<TableListener>();
  #table: SlotTable | undefined;

  constructor(opts: MetaOptions) {
    this.#opts = opts;
  }

  get table(): SlotTable | undefined {
    return this.#table;
  }

  members(): string[] {
    return [...this.#dataServers].sort();
  }

  addDataServer(id: string): void {
    this.#dataServers.add(id);
    this.#rearrange();
  }

  removeDataServer(id: string): void {
    if (this.#dataServers.delete(id)) this.#rearrange();
  }

  /** Calls `listener` with the current table (if any) and every later one. */
  onTable(listener: TableListener): () => void {
    this.#listeners.add(listener);
    if (this.#table !== undefined) listener(this.#table);
    return () => this.#listeners.delete(listener);
  }

  #rearrange(): void {
    // Leader balancing is unbounded here: the embedded store assigns a table before anyone uses it.
    const next = arrangeSlots(this.#table, this.members(), {
      slotCount: this.#opts.slotCount,
      followers: this.#opts.followers,
      maxLeaderMoves: this.#opts.maxLeaderMoves,
      nextEpoch: (prev) => this.#clock.next(prev),
    });
    if (next === undefined || next === this.#table) return;
    this.#table = next;
    this.#opts.logger.info('slot table changed', {
      role: 'meta',
      epoch: next.epoch,
      dataServers: this.#dataServers.size,
    });
    for (const l of this.#listeners) l(next);
  }
}

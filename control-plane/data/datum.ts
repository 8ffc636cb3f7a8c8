/**
 * One datum of the data layer: the publishers of one service key, their tag counts, and the
 * version, with an immutable snapshot made once per version.
 */
import type { OwnedPublisher } from '../../proto/cluster-records.js';
import type { Instance } from '../../proto/instance.js';

export type Publisher = OwnedPublisher;

/** An immutable view of one datum, safe to hand out and to serialise once for many pushes. */
export interface DatumSnapshot {
  readonly key: string;
  readonly version: number;
  readonly instances: readonly Instance[];
}

/** The publishers of one key (see the module comment). */
export class Datum {
  readonly publishers = new Map<string, Publisher>();
  /** How many publishers carry each tag: the catalog reads it without walking the publishers. */
  readonly tagCounts = new Map<string, number>();
  #snapshot: DatumSnapshot | undefined;

  constructor(
    readonly key: string,
    readonly slot: number,
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

  /** Adds or replaces a publisher, keeping the tag counts. */
  put(p: Publisher): void {
    const old = this.publishers.get(p.registrationId);
    if (old !== undefined) this.#countTags(old, -1);
    this.publishers.set(p.registrationId, p);
    this.#countTags(p, 1);
  }

  /** Removes a publisher, keeping the tag counts. */
  del(regId: string): void {
    const old = this.publishers.get(regId);
    if (old === undefined) return;
    this.publishers.delete(regId);
    this.#countTags(old, -1);
  }

  #countTags(p: Publisher, delta: number): void {
    for (const t of new Set(p.instance.tags)) {
      const n = (this.tagCounts.get(t) ?? 0) + delta;
      if (n > 0) this.tagCounts.set(t, n);
      else this.tagCounts.delete(t);
    }
  }

  changed(version: number): void {
    this.version = version;
    this.#snapshot = undefined;
  }
}

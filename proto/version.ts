/**
 * Versions that only grow, even across process restarts: milliseconds since 2020-01-01 shifted left
 * by 12 bits, plus a sequence for changes within one millisecond (SOFARegistry's datum versions use
 * the same idea). They stay below 2^53 until about the year 2088, so they travel as JSON numbers.
 */
const EPOCH_MS = Date.UTC(2020, 0, 1);
const SEQUENCE_BITS = 4096;

/** A monotonic version source. `now` is injectable for tests. */
export class VersionClock {
  #last = 0;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The next version: greater than every version this clock gave, and than `floor`. */
  next(floor = 0): number {
    const fromTime = (this.#now() - EPOCH_MS) * SEQUENCE_BITS;
    const v = Math.max(fromTime, this.#last + 1, floor + 1);
    this.#last = v;
    return v;
  }
}

/** The wall-clock time (ms since the Unix epoch) at which a version was made; for logs and ages. */
export function versionTimeMs(version: number): number {
  return Math.floor(version / SEQUENCE_BITS) + EPOCH_MS;
}

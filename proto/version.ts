/**
 * Versions that only grow, even across process restarts: milliseconds since 2020-01-01 shifted left
 * by 12 bits, plus a sequence for changes within one millisecond (SOFARegistry's datum versions use
 * the same idea). They stay below 2^53 until about the year 2088, so they travel as JSON numbers.
 *
 * The wall clock only proposes a version: a clock that jumps back never makes one go backwards
 * (each version is above the last one given and above the caller's floor). A clock that runs behind
 * another server's (a follower that takes a slot over from its leader) keeps pace with the versions
 * it has {@link VersionClock.observe observed}: the highest one, advanced by the monotonic time
 * since it was seen, as a hybrid logical clock does. So a takeover issues versions above those the
 * old leader gave in the moments the follower missed.
 */
const EPOCH_MS = Date.UTC(2020, 0, 1);
const SEQUENCE_BITS = 4096;

/** A monotonic version source. `now` (wall ms) and `monotonicNow` (ms) are injectable for tests. */
export class VersionClock {
  #last = 0;
  /** The highest version observed from another clock, and the monotonic time it was seen. */
  #observed = 0;
  #observedAt = 0;
  readonly #now: () => number;
  readonly #monotonicNow: () => number;

  constructor(now: () => number = Date.now, monotonicNow: () => number = () => performance.now()) {
    this.#now = now;
    this.#monotonicNow = monotonicNow;
  }

  /** The next version: greater than every version this clock gave or observed, and than `floor`. */
  next(floor = 0): number {
    const fromTime = (this.#now() - EPOCH_MS) * SEQUENCE_BITS;
    const fromObserved =
      this.#observed === 0
        ? 0
        : this.#observed + Math.floor(this.#monotonicNow() - this.#observedAt) * SEQUENCE_BITS;
    const v = Math.max(fromTime, fromObserved, this.#last + 1, floor + 1);
    this.#last = v;
    return v;
  }

  /**
   * Takes note of a version made by another clock (a slot leader's): later versions of this clock
   * are above it, and advance from it at the rate of time even when this wall clock runs behind.
   */
  observe(version: number): void {
    this.#last = Math.max(this.#last, version);
    const now = this.#monotonicNow();
    const base = this.#observed + Math.floor(now - this.#observedAt) * SEQUENCE_BITS;
    if (this.#observed !== 0 && version <= base) return;
    this.#observed = version;
    this.#observedAt = now;
  }
}

/** The wall-clock time (ms since the Unix epoch) at which a version was made; for logs and ages. */
export function versionTimeMs(version: number): number {
  return Math.floor(version / SEQUENCE_BITS) + EPOCH_MS;
}

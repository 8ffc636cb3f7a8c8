/** A token bucket: `ratePerSec` tokens refill per second, up to `burst`. The clock is injectable. */
export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.#tokens = burst;
    this.#last = now();
  }

  /** Takes one token; false when the bucket is empty. */
  take(): boolean {
    return this.takeUpTo(1) === 1;
  }

  /** Takes as many of `n` tokens as there are whole ones; returns how many it took. */
  takeUpTo(n: number): number {
    const t = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((t - this.#last) / 1000) * this.ratePerSec);
    this.#last = t;
    const taken = Math.max(0, Math.min(n, Math.floor(this.#tokens)));
    this.#tokens -= taken;
    return taken;
  }

  /** How long until `n` tokens (at most the burst) are there. */
  msUntil(n: number): number {
    const missing = Math.min(n, this.burst) - this.#tokens;
    return missing <= 0 ? 0 : Math.ceil((missing / this.ratePerSec) * 1000);
  }
}

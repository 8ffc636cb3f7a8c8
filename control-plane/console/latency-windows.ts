/**
 * Push latency in fixed time windows (send → acknowledgement), kept for the console: each window
 * holds a bounded sample of its latencies, so memory stays fixed however many pushes go out.
 */
import type { ConsoleLatencyWindow } from '../../proto/console.js';

/** Samples kept per window; beyond it every sample replaces a random earlier one (reservoir). */
const SAMPLES_PER_WINDOW = 1024;

interface Window {
  readonly start: number;
  count: number;
  readonly samples: number[];
}

/** The last `keep` windows of `windowMs` each. */
export class LatencyWindows {
  readonly #windowMs: number;
  readonly #keep: number;
  readonly #now: () => number;
  readonly #windows: Window[] = [];

  constructor(windowMs = 10_000, keep = 30, now: () => number = Date.now) {
    this.#windowMs = windowMs;
    this.#keep = keep;
    this.#now = now;
  }

  record(ms: number): void {
    const w = this.#current();
    w.count++;
    if (w.samples.length < SAMPLES_PER_WINDOW) w.samples.push(ms);
    else {
      const i = Math.floor(Math.random() * w.count);
      if (i < SAMPLES_PER_WINDOW) w.samples[i] = ms;
    }
  }

  /** Oldest first, windows with no push left out. */
  view(): ConsoleLatencyWindow[] {
    const now = this.#now();
    const out: ConsoleLatencyWindow[] = [];
    for (const w of this.#windows) {
      if (now - w.start > this.#windowMs * this.#keep) continue;
      const sorted = [...w.samples].sort((a, b) => a - b);
      out.push({
        at: w.start + this.#windowMs,
        windowMs: this.#windowMs,
        count: w.count,
        p50Ms: Math.round(quantile(sorted, 0.5)),
        p99Ms: Math.round(quantile(sorted, 0.99)),
      });
    }
    return out;
  }

  #current(): Window {
    const start = Math.floor(this.#now() / this.#windowMs) * this.#windowMs;
    const last = this.#windows[this.#windows.length - 1];
    if (last?.start === start) return last;
    const w: Window = { start, count: 0, samples: [] };
    this.#windows.push(w);
    if (this.#windows.length > this.#keep) this.#windows.shift();
    return w;
  }
}

/** The `q` quantile of sorted values (nearest rank); 0 when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] ?? 0;
}

/**
 * Windows of several sessions merged by their end: counts add up, p50 is the count-weighted mean of
 * theirs and p99 the highest (an upper bound: quantiles of parts do not combine exactly).
 */
export function mergeWindows(lists: readonly (readonly ConsoleLatencyWindow[])[]): ConsoleLatencyWindow[] {
  const byEnd = new Map<number, { w: ConsoleLatencyWindow; p50Sum: number }>();
  for (const list of lists)
    for (const w of list) {
      const m = byEnd.get(w.at);
      if (m === undefined) {
        byEnd.set(w.at, { w, p50Sum: w.p50Ms * w.count });
        continue;
      }
      const count = m.w.count + w.count;
      m.p50Sum += w.p50Ms * w.count;
      m.w = {
        ...m.w,
        count,
        p99Ms: Math.max(m.w.p99Ms, w.p99Ms),
        p50Ms: count === 0 ? 0 : Math.round(m.p50Sum / count),
      };
    }
  return [...byEnd.values()].map((m) => m.w).sort((a, b) => a.at - b.at);
}

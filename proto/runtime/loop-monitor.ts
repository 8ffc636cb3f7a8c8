/**
 * How late this process's own event loop runs, and a clock that stops while it is stalled.
 *
 * A process that was paused (SIGSTOP, a long synchronous task, a GC pause, CPU starvation) did not
 * hear its peers during the pause, through no fault of theirs: their heartbeats sit unread in its
 * socket buffers. Judging their leases by wall time would expire them for its own stall. Leases and
 * grace periods are therefore judged by {@link LoopMonitor.liveNow}: wall time minus every stall of
 * this loop beyond a small tolerance. A stall extends every lease by its length; a peer that really
 * went silent still expires, one stall later.
 *
 * The monitor samples with a timer every `sampleMs`; a sample that fires late by more than
 * `toleranceMs` adds the excess to the stalled total. `liveNow()` also counts a stall in progress
 * (the sampler has not run yet because the loop only just resumed), so the order in which timers
 * fire after a pause does not matter. One loop per process: use {@link loopMonitor}. A monitor on the
 * real clock starts sampling by itself on first use (its timer never keeps a process alive), so a
 * reader that forgot `start()` does not see live time stand still.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface LoopMonitorOptions {
  /** Sampling interval (ms). */
  readonly sampleMs?: number;
  /** Lateness below this is ordinary jitter, not a stall (ms). */
  readonly toleranceMs?: number;
  /** Wall clock, injectable for tests. */
  readonly now?: () => number;
}

/** A summary of recent event-loop delay (ms). */
export interface LoopDelay {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Lateness of the loop right now: how long since the sampler should have run. */
  readonly currentMs: number;
  /** Sum of every stall beyond tolerance since the monitor started. */
  readonly stalledTotalMs: number;
  /** The longest single stall seen. */
  readonly longestStallMs: number;
  /** Wall time since the last stall ended (Infinity when there was none). */
  readonly sinceLastStallMs: number;
}

export class LoopMonitor {
  readonly #sampleMs: number;
  readonly #toleranceMs: number;
  readonly #now: () => number;
  #lastSample: number;
  #stalled = 0;
  #longest = 0;
  #lastStallEnd = -Infinity;
  #timer: NodeJS.Timeout | undefined;
  #histogram: IntervalHistogram | undefined;
  #users = 0;
  readonly #autoStart: boolean;

  constructor(opts: LoopMonitorOptions = {}) {
    this.#sampleMs = opts.sampleMs ?? 100;
    this.#toleranceMs = opts.toleranceMs ?? 50;
    this.#now = opts.now ?? Date.now;
    this.#autoStart = opts.now === undefined;
    this.#lastSample = this.#now();
  }

  /** Starts sampling (reference-counted for a monitor on an injected clock). */
  start(): void {
    this.#users += 1;
    this.#run();
  }

  #run(): void {
    if (this.#timer !== undefined) return;
    this.#lastSample = this.#now();
    this.#timer = setInterval(() => {
      this.sample();
    }, this.#sampleMs);
    this.#timer.unref();
    this.#histogram = monitorEventLoopDelay({ resolution: 20 });
    this.#histogram.enable();
  }

  stop(): void {
    this.#users = Math.max(0, this.#users - 1);
    // On the real clock sampling runs from first use to the end of the process (unref'd, cheap):
    // a role that stops must not blind another that still judges leases.
    if (this.#users > 0 || this.#autoStart) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#histogram?.disable();
    this.#histogram = undefined;
  }

  /** Records one sample; the timer calls it, tests may too. */
  sample(): void {
    const t = this.#now();
    const excess = this.#excess(t);
    if (excess > 0) {
      this.#stalled += excess;
      this.#longest = Math.max(this.#longest, excess);
      this.#lastStallEnd = t;
    }
    this.#lastSample = t;
  }

  /**
   * Time that advances only while this loop runs: wall time minus its stalls (ms, comparable only
   * with other values of `liveNow`). Never goes backwards.
   */
  liveNow(): number {
    if (this.#autoStart) this.#run();
    const t = this.#now();
    return t - this.#stalled - this.#excess(t);
  }

  /** True when the loop stalled within the last `withinMs` (or is stalled right now). */
  stalledRecently(withinMs: number): boolean {
    if (this.#autoStart) this.#run();
    const t = this.#now();
    return this.#excess(t) > 0 || t - this.#lastStallEnd < withinMs;
  }

  delay(): LoopDelay {
    const h = this.#histogram;
    const t = this.#now();
    const ms = (ns: number | undefined): number => (ns === undefined || !Number.isFinite(ns) ? 0 : ns / 1e6);
    return {
      p50Ms: ms(h?.percentile(50)),
      p99Ms: ms(h?.percentile(99)),
      maxMs: ms(h?.max),
      currentMs: Math.max(0, t - this.#lastSample - this.#sampleMs),
      stalledTotalMs: this.#stalled + this.#excess(t),
      longestStallMs: this.#longest,
      sinceLastStallMs: t - this.#lastStallEnd,
    };
  }

  /** Clears the delay histogram (call after reading it, to report a window rather than all time). */
  resetHistogram(): void {
    this.#histogram?.reset();
  }

  /** How much of the time since the last sample was a stall, beyond the interval and tolerance. */
  #excess(t: number): number {
    return Math.max(0, t - this.#lastSample - this.#sampleMs - this.#toleranceMs);
  }
}

/** The process's monitor (one event loop per process). Roles `start()` it and `stop()` when done. */
export const loopMonitor = new LoopMonitor();

/**
 * A timeout measured in live time: when the wall-clock timer fires and the loop was stalled in the
 * meantime, it waits again for the part of `ms` that the stall ate, so a stall never shortens it.
 * Returns a cancel function.
 */
export function liveTimeout(fn: () => void, ms: number, monitor: LoopMonitor = loopMonitor): () => void {
  const due = monitor.liveNow() + ms;
  let timer: NodeJS.Timeout;
  const arm = (wait: number): void => {
    timer = setTimeout(() => {
      const left = due - monitor.liveNow();
      if (left > 0) arm(left);
      else fn();
    }, wait);
    timer.unref();
  };
  arm(ms);
  return () => {
    clearTimeout(timer);
  };
}

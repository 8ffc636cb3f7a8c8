/** Summaries of timing samples: nearest-rank percentiles, so every figure is a value actually measured. */

export interface Summary {
  readonly count: number;
  readonly min: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Summarises samples (any unit); an empty list gives NaN figures and count 0. */
export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { count: 0, min: NaN, p50: NaN, p99: NaN, max: NaN, mean: NaN };
  const rank = (p: number): number =>
    sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))] ?? NaN;
  return {
    count: n,
    min: sorted[0] ?? NaN,
    p50: rank(50),
    p99: rank(99),
    max: sorted[n - 1] ?? NaN,
    mean: sorted.reduce((a, b) => a + b, 0) / n,
  };
}

export function median(samples: readonly number[]): number {
  return summarize(samples).p50;
}

/** Rounds for display and JSON: three significant decimals are more than the noise allows. */
export function round(v: number, digits = 2): number {
  if (!Number.isFinite(v)) return v;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/**
 * Go-style durations as Consul takes them (`10s`, `1m30s`, `250ms`, `0`). A bare number is taken as
 * nanoseconds, which is what Consul's JSON decoding does with a number in a duration field.
 */
const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * The largest delay Node's timers honour (2^31 − 1 ms, about 24.8 days). A longer one fires after
 * 1 ms with a `TimeoutOverflowWarning`, which would turn a long interval into a busy loop: every
 * duration that reaches a timer is checked against a bound below this.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** Documented bounds of one duration field: `minMs` inclusive, `maxMs` inclusive. */
export interface DurationBounds {
  readonly minMs: number;
  readonly maxMs: number;
}

/**
 * A duration with its bound: milliseconds, or the message naming the bound it breaks. Never throws,
 * whatever `raw` is.
 */
export function boundedDurationMs(raw: unknown, bounds: DurationBounds): number | string {
  const ms = durationFieldMs(raw);
  if (ms === undefined) return 'must be a duration like 10s, 1m30s or 250ms';
  if (ms < bounds.minMs || ms > bounds.maxMs)
    return `must be between ${formatDurationMs(bounds.minMs)} and ${formatDurationMs(bounds.maxMs)}`;
  return ms;
}

/** Milliseconds, or `undefined` when the text is not a duration. */
export function parseDurationMs(text: string): number | undefined {
  if (text === '0') return 0;
  // Longer texts are no duration anyone means, and a bound keeps the scan cheap.
  if (text.length > 64) return undefined;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (m === null) return undefined;
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? Number.NaN);
    pos = re.lastIndex;
  }
  return pos === 0 || !Number.isFinite(total) ? undefined : total;
}

/** A duration field from JSON: a string in Go syntax or a number of nanoseconds. */
export function durationFieldMs(raw: unknown): number | undefined {
  if (typeof raw === 'number' && Number.isFinite(raw) && raw >= 0) return raw / 1e6;
  if (typeof raw === 'string') return parseDurationMs(raw.trim());
  return undefined;
}

/** Renders milliseconds the Go way, for responses (`10s`, `1m30s`, `250ms`). */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return `${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${s > 0 ? `${s}s` : ''}`;
}

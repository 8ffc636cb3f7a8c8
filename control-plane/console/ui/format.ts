/** Formatting of times, durations and counts for the console's tables. */

/** `1234` ms → `1.2 s`, `65000` → `1 min 5 s`; negative or absent → `–`. */
export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const min = Math.floor(ms / 60_000);
  if (min < 60) return `${min} min ${Math.floor((ms % 60_000) / 1000)} s`;
  return `${Math.floor(min / 60)} h ${min % 60} min`;
}

/** An epoch-ms time as local `HH:MM:SS` (today) or date and time; 0/absent → `–`. */
export function time(at: number | string | undefined): string {
  if (at === undefined || at === 0 || at === '') return '–';
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return '–';
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

/** How long ago `at` was, from `now`. */
export function ago(at: number | string | undefined, now = Date.now()): string {
  if (at === undefined || at === 0 || at === '') return '–';
  const t = typeof at === 'number' ? at : Date.parse(at);
  return Number.isNaN(t) ? '–' : `${duration(Math.max(0, now - t))} ago`;
}

/** `12345` → `12,345` (the browser's locale). */
export const count = (n: number): string => n.toLocaleString();

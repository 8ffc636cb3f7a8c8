/** What every workload shares: its signature and the guard that keeps one side's failure contained. */
import type { BenchOptions } from '../options.js';
import { progress } from '../progress.js';
import type { WorkloadResult } from '../report.js';

export type Workload = (opts: BenchOptions) => Promise<WorkloadResult>;

/**
 * Runs one side of a workload (meshreg or etcd) under a time cap. A failure or a timeout becomes a
 * line in `problems` and the side yields undefined, so the rest of the run goes on. `cleanup` runs
 * either way (it stops the processes the side started).
 */
export async function side<T>(
  label: string,
  problems: string[],
  timeoutMs: number,
  body: (cleanups: (() => unknown)[]) => Promise<T>,
): Promise<T | undefined> {
  const cleanups: (() => unknown)[] = [];
  let timer: NodeJS.Timeout | undefined;
  const cap = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`gave up after ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([body(cleanups), cap]);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    problems.push(`${label}: ${msg}`);
    progress(label, `FAILED: ${msg}`);
    return undefined;
  } finally {
    clearTimeout(timer);
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        problems.push(`${label}: cleanup failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}

/** Splits `total` as evenly as possible into `parts` counts. */
export function spread(total: number, parts: number): number[] {
  const base = Math.floor(total / parts);
  return Array.from({ length: parts }, (_, i) => base + (i < total % parts ? 1 : 0));
}

/** A JSON value of about the size of one published instance, for etcd keys. */
export function instanceValue(
  service: string,
  id: string,
  port: number,
  extra: Record<string, string> = {},
): string {
  return JSON.stringify({
    id,
    service,
    node: 'bench',
    address: '127.0.0.1',
    port,
    tags: ['bench'],
    meta: extra,
    weights: { passing: 1, warning: 1 },
    health: 'passing',
  });
}

/** Yields to the event loop so sockets are served between bursts of work. */
export function yieldLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

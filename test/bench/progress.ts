/** Progress lines on stderr while the bench runs (stdout carries only the final table). */
const started = performance.now();

export function progress(scope: string, msg: string): void {
  const t = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[bench ${t}s] ${scope}: ${msg}\n`);
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `done` every `intervalMs` until true; returns the elapsed milliseconds, or throws naming
 * `what` after `timeoutMs`. `describe` adds the current state to the error.
 */
export async function until(
  what: string,
  done: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 2,
  describe: () => string = () => '',
): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await done()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) {
      const state = describe();
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${state === '' ? '' : ` (${state})`}`,
      );
    }
    await sleep(intervalMs);
  }
}

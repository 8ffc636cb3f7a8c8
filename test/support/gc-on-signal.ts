/**
 * Preloaded into a test's child process (`NODE_OPTIONS=--expose-gc --import <this file>`): on
 * SIGUSR2 it collects garbage fully and writes one line `gc-heap <heapUsed> <rss>` to stderr, so a
 * test can compare memory after GC instead of whatever the collector has not reached yet.
 */
const collect = (globalThis as { gc?: () => void }).gc;

process.on('SIGUSR2', () => {
  collect?.();
  collect?.();
  const m = process.memoryUsage();
  process.stderr.write(`gc-heap ${m.heapUsed} ${m.rss}\n`);
});

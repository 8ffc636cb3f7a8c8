import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff, DEFAULT_BACKOFF } from '../../proto/runtime/backoff.js';

const OPTS = { initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0.5 };

function delays(b: Backoff, n: number): number[] {
  return Array.from({ length: n }, () => b.next());
}

test('backoff - delays grow by the multiplier up to the cap', () => {
  assert.deepEqual(delays(new Backoff(OPTS, () => 1), 7), [100, 200, 400, 800, 1000, 1000, 1000]);
});

test('backoff - jitter takes off at most its share of each delay', () => {
  assert.deepEqual(delays(new Backoff(OPTS, () => 0), 6), [50, 100, 200, 400, 500, 500]);
  assert.deepEqual(delays(new Backoff(OPTS, () => 0.5), 5), [75, 150, 300, 600, 750]);
  let seed = 7;
  const lcg = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const b = new Backoff(OPTS, lcg);
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = Math.min(OPTS.maxMs, OPTS.initialMs * 2 ** attempt);
    const d = b.next();
    assert.ok(d >= base * (1 - OPTS.jitter) && d <= base, `attempt ${attempt}: ${d} of ${base}`);
  }
  assert.deepEqual(delays(new Backoff({ ...OPTS, jitter: 0 }, () => 0.9), 3), [100, 200, 400]);
});

test('backoff - reset starts over from the initial delay', () => {
  const b = new Backoff(OPTS, () => 1);
  assert.deepEqual(delays(b, 3), [100, 200, 400]);
  assert.equal(b.attempts, 3);
  b.reset();
  assert.equal(b.attempts, 0);
  assert.deepEqual(delays(b, 2), [100, 200]);
  assert.equal(b.max(), 1000);
});

test('backoff - the defaults start at 100 ms and stop at 5 s', () => {
  const b = new Backoff(DEFAULT_BACKOFF, () => 1);
  const d = delays(b, 10);
  assert.equal(d[0], 100);
  assert.equal(d.at(-1), 5000);
  assert.ok(Object.isFrozen(DEFAULT_BACKOFF));
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenBucket } from '../../control-plane/session/rate-limit.js';

test('rate limit - a full bucket allows the burst, then refills at the rate up to the burst', () => {
  let now = 1000;
  const bucket = new TokenBucket(10, 3, () => now);
  const taken: boolean[] = [];
  const take = (n: number): void => {
    for (let i = 0; i < n; i++) taken.push(bucket.take());
  };
  take(4);
  assert.deepEqual(taken.splice(0), [true, true, true, false]);
  now += 50; // half a token
  take(1);
  now += 50; // the other half
  take(2);
  assert.deepEqual(taken.splice(0), [false, true, false]);
  now += 10_000; // far more than the burst's worth
  take(4);
  assert.deepEqual(taken.splice(0), [true, true, true, false]);
});

test('rate limit - a refused take does not cost a token', () => {
  let now = 0;
  const bucket = new TokenBucket(1, 1, () => now);
  assert.equal(bucket.take(), true);
  for (let i = 0; i < 10; i++) assert.equal(bucket.take(), false);
  now += 1000;
  assert.equal(bucket.take(), true);
});

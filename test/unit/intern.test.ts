/**
 * The bounded intern tables: compacting keeps every value equal, shares what repeats, and no input
 * can grow a table past its limits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { InstancePool, InternTable, sameInstance, type InternLimits } from '../../proto/runtime/intern.js';
import { makeInstance } from '../support/fixtures.js';
import { instance } from '../support/arbitraries.js';

const SMALL: InternLimits = { maxEntries: 8, maxBytes: 256, maxKeyLength: 32 };

const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

test('intern - property: any sequence of keys keeps a table within its entry and byte limits', () => {
  fc.assert(
    fc.property(
      fc.record({ maxEntries: fc.integer({ min: 1, max: 16 }), maxBytes: fc.integer({ min: 2, max: 512 }) }),
      fc.array(fc.string({ maxLength: 40 }), { maxLength: 300 }),
      ({ maxEntries, maxBytes }, keys) => {
        const table = new InternTable<string>({ maxEntries, maxBytes, maxKeyLength: 32 });
        for (const k of keys) {
          assert.equal(table.canonical(k, k), k);
          assert.ok(table.size <= 2 * maxEntries, `size ${String(table.size)}`);
          assert.ok(table.bytes <= Math.max(maxBytes, 64), `bytes ${String(table.bytes)}`);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('intern - property: hostile instances never grow the pool past its limits', () => {
  fc.assert(
    fc.property(fc.array(instance, { maxLength: 60 }), (list) => {
      const pool = new InstancePool(SMALL);
      for (const i of list) {
        const c = pool.instance(copy(i));
        assert.deepEqual(copy(c), copy(i));
        assert.ok(sameInstance(c, i));
        const size = pool.size;
        assert.ok(size.strings <= 2 * SMALL.maxEntries && size.values <= 2 * SMALL.maxEntries);
        assert.ok(size.stringBytes <= SMALL.maxBytes && size.valueBytes <= SMALL.maxBytes);
      }
    }),
    { numRuns: 200 },
  );
});

test('intern - a compacted instance equals the decoded one and shares its repeated parts', () => {
  const pool = new InstancePool();
  const a = makeInstance({ id: 'web-1', service: 'web', tags: ['v1', 'blue'], meta: { team: 'pay' } });
  const b = makeInstance({ id: 'web-2', service: 'web', tags: ['v1', 'blue'], meta: { team: 'pay' } });
  const ca = pool.instance(copy(a));
  const cb = pool.instance(copy(b));
  assert.deepEqual(ca, a);
  assert.deepEqual(cb, b);
  assert.equal(ca.tags, cb.tags, 'equal tag lists are one array');
  assert.equal(ca.meta, cb.meta, 'equal meta maps are one object');
  assert.equal(ca.weights, cb.weights);
  assert.ok(Object.isFrozen(ca.tags) && Object.isFrozen(ca.meta), 'shared values cannot be changed');
});

test('intern - an equal instance decoded again is the one already held; a changed one is not', () => {
  const pool = new InstancePool();
  const a = makeInstance({ id: 'web-1', service: 'web', port: 80 });
  const first = pool.instance(copy(a));
  assert.equal(pool.instance(copy(a)), first);
  const moved = pool.instance(copy({ ...a, port: 81 }));
  assert.notEqual(moved, first);
  assert.equal(moved.port, 81);
  assert.equal(pool.instance(copy({ ...a, port: 81 })), moved, 'the newer one is remembered');
  assert.ok(!sameInstance(first, moved));
  assert.ok(!sameInstance(first, { ...a, meta: { x: 'y' } }));
  assert.ok(
    !sameInstance(first, { ...a, checks: [{ id: 'c', name: '', status: 'passing', output: '', type: '' }] }),
  );
});

test('intern - a full generation rotates: recent values survive, old ones fall out', () => {
  const table = new InternTable<string>({ maxEntries: 2, maxBytes: 1024, maxKeyLength: 32 });
  const a = table.canonical('a', 'A');
  table.canonical('b', 'B');
  table.canonical('c', 'C'); // rotates: {a, b} becomes the previous generation
  assert.equal(table.lookup('a'), a, 'found in the previous generation and carried over');
  table.canonical('d', 'D');
  table.canonical('e', 'E');
  assert.equal(table.lookup('b'), undefined, 'not seen for two rotations: dropped');
  assert.equal(table.canonical('x'.repeat(33), 'long'), 'long');
  assert.equal(table.lookup('x'.repeat(33)), undefined, 'keys over the length limit are never stored');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemberGrace } from '../../control-plane/meta/member-grace.js';
import type { SharedMember } from '../../control-plane/meta/meta-store.js';

const data = (url: string): SharedMember => ({ role: 'data', url, draining: false });
const ids = (m: ReadonlyMap<string, SharedMember>): string[] => [...m.keys()].sort();

test('member grace - a member whose key ran out is kept for the grace period, then dropped', () => {
  let now = 0;
  const grace = new MemberGrace(1000, () => now);
  const both = new Map([
    ['d1', data('ws://1')],
    ['d2', data('ws://2')],
  ]);
  assert.deepEqual(ids(grace.update(both, new Set())), ['d1', 'd2']);
  now = 100;
  const one = new Map([['d1', data('ws://1')]]);
  assert.deepEqual(ids(grace.update(one, new Set())), ['d1', 'd2'], 'kept while it re-joins');
  assert.equal(grace.nextExpiryMs(), 1000);
  now = 1099;
  assert.deepEqual(ids(grace.update(one, new Set())), ['d1', 'd2']);
  now = 1100;
  assert.deepEqual(ids(grace.update(one, new Set())), ['d1'], 'gone once the grace ran out');
  assert.equal(grace.nextExpiryMs(), undefined);
});

test('member grace - a withdrawn member leaves at once, and one that re-joins is not kept twice', () => {
  let now = 0;
  const grace = new MemberGrace(1000, () => now);
  grace.update(
    new Map([
      ['d1', data('ws://1')],
      ['d2', data('ws://2')],
    ]),
    new Set(),
  );
  now = 10;
  assert.deepEqual(ids(grace.update(new Map(), new Set(['d1']))), ['d2'], 'd1 withdrawn on purpose');
  now = 20;
  const back = new Map([['d2', data('ws://2b')]]);
  assert.equal(grace.update(back, new Set()).get('d2')?.url, 'ws://2b', 'the stored value wins');
  assert.equal(grace.nextExpiryMs(), undefined, 'nothing kept once it re-joined');
});

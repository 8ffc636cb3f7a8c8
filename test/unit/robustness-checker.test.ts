/**
 * The robustness checker: it passes a clean history, fails a history that breaks each of the five
 * invariants (and names that invariant), and never fails a history generated from a correct model of
 * the registry (subscribers apply a growing prefix of the operations).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { checkHistory, type InvariantName } from '../robustness/checker.js';
import { newHistory, type History, type OpEvent } from '../robustness/history.js';
import { describeFault, drawSchedule, Random } from '../robustness/schedule.js';

const T0 = 1_000_000;
const OPTS = { leaderOverlapMs: 1000 };

const op = (
  kind: OpEvent['kind'],
  id: string,
  at: number,
  ok: OpEvent['ok'] = true,
  agent = 'a1',
): OpEvent => ({
  kind,
  id,
  agent,
  service: 'web',
  start: T0 + at,
  end: T0 + at + 5,
  ok,
});

const obs = (at: number, index: number, ids: string[], agent = 'a2'): History['observations'][number] => ({
  time: T0 + at,
  subscriber: `${agent}#1/web/blocking`,
  agent,
  service: 'web',
  via: 'blocking',
  index,
  ids,
});

/** web-1 and web-2 registered, web-1 deregistered, a subscriber that saw it all, one table writer. */
function clean(): History {
  const h = newHistory(1, 5000, 500, T0);
  h.ops.push(op('register', 'web-1', 0), op('register', 'web-2', 100), op('deregister', 'web-1', 300));
  h.observations.push(obs(50, 2, ['web-1']), obs(150, 3, ['web-1', 'web-2']), obs(350, 4, ['web-2']));
  h.observations.push({
    ...obs(400, 7, []),
    subscriber: 'a2#1/web/push',
    via: 'push',
    ids: undefined,
  } as never);
  h.tableWrites.push(
    { time: T0 + 10, epoch: 5, revision: 10, writer: 'meta-1' },
    { time: T0 + 3000, epoch: 6, revision: 12, writer: 'meta-2' },
  );
  h.healedAt = T0 + 1000;
  h.observations.push({ ...obs(1200, 4, ['web-2']), subscriber: 'a2#1/web/poll', via: 'poll' });
  return h;
}

const failed = (h: History): InvariantName[] => [...new Set(checkHistory(h, OPTS).map((v) => v.invariant))];

describe('robustness checker', () => {
  test('checker - a clean history has no violation', () => {
    assert.deepEqual(checkHistory(clean(), OPTS), []);
  });

  test('checker - an X-Consul-Index that goes back breaks "monotonic", with an excerpt', () => {
    const h = clean();
    h.observations.splice(2, 0, obs(200, 1, ['web-1', 'web-2']));
    const v = checkHistory(h, OPTS);
    assert.deepEqual(failed(h), ['monotonic']);
    assert.match(v[0]?.message ?? '', /went back from 3 to 1/);
    assert.ok(v[0]?.excerpt.some((l) => l.includes('index 1 [web-1,web-2]')));
  });

  test('checker - a pushed version that goes back breaks "monotonic"', () => {
    const h = clean();
    h.observations.push({
      ...obs(450, 6, []),
      subscriber: 'a2#1/web/push',
      via: 'push',
      ids: undefined,
    } as never);
    assert.deepEqual(failed(h), ['monotonic']);
  });

  test('checker - a subscriber that never shows the registered set after the heal breaks "converged"', () => {
    const h = clean();
    h.observations.pop();
    h.observations.push({ ...obs(1200, 5, []), subscriber: 'a2#1/web/poll', via: 'poll' });
    assert.deepEqual(failed(h), ['converged']);
    const late = clean();
    late.observations.pop();
    late.observations.push({ ...obs(7000, 5, ['web-2']), subscriber: 'a2#1/web/poll', via: 'poll' });
    assert.deepEqual(failed(late), ['converged'], 'converging after the bound is too late');
  });

  test('checker - an instance that leaves without a deregistration breaks "no-shrink"', () => {
    const h = clean();
    h.observations.splice(2, 0, obs(200, 4, ['web-1']));
    assert.deepEqual(failed(h), ['no-shrink']);
  });

  test('checker - instances of an agent killed on purpose may leave after the grace, not before', () => {
    const after = clean();
    after.agents.push({ time: T0 + 160, agent: 'a1', phase: 'killed' });
    // web-2 (of a1) leaves at +700, past the 500 ms grace; a1 never came back, so it may stay gone.
    after.observations.splice(2, 1, obs(700, 4, []));
    after.observations.splice(-1, 1, { ...obs(1200, 4, []), subscriber: 'a2#1/web/poll', via: 'poll' });
    assert.deepEqual(failed(after), []);
    const before = clean();
    before.agents.push({ time: T0 + 160, agent: 'a1', phase: 'killed' });
    before.observations.splice(2, 1, obs(350, 4, []));
    assert.deepEqual(failed(before), ['no-shrink']);
  });

  test('checker - an answer never registered, or a deregistered one coming back, breaks "no-phantom"', () => {
    const phantom = clean();
    phantom.observations.splice(0, 1, obs(50, 2, ['web-1', 'ghost-1']));
    assert.deepEqual(failed(phantom), ['no-phantom']);
    const back = clean();
    back.observations.splice(3, 0, obs(380, 5, ['web-1', 'web-2']));
    back.observations.splice(4, 1);
    assert.deepEqual(failed(back), ['no-phantom']);
  });

  test('checker - two metas writing the table, or an epoch written again, breaks "one-table-writer"', () => {
    const two = clean();
    two.tableWrites.push({ time: T0 + 3300, epoch: 7, revision: 13, writer: 'meta-1' });
    assert.deepEqual(failed(two), ['one-table-writer']);
    const again = clean();
    again.tableWrites.push({ time: T0 + 9000, epoch: 6, revision: 20, writer: 'meta-2' });
    assert.deepEqual(failed(again), ['one-table-writer']);
  });

  test('checker - a history generated from a correct model never fails', () => {
    const step = fc.oneof(
      fc.constant<'reg'>('reg'),
      fc.constant<'dereg'>('dereg'),
      fc.record({ sub: fc.integer({ min: 0, max: 2 }), lag: fc.integer({ min: 0, max: 3 }) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), fc.boolean(), (steps, unknownLast) => {
        const h = modelHistory(steps, unknownLast);
        assert.deepEqual(checkHistory(h, OPTS), []);
      }),
      { numRuns: 200 },
    );
  });
});

type Step = 'reg' | 'dereg' | { sub: number; lag: number };

/**
 * A correct registry: operations apply in order; each subscriber answers the state after a prefix of
 * them that only grows (lagging by up to `lag` operations), its index the prefix length.
 */
function modelHistory(steps: readonly Step[], unknownLast: boolean): History {
  const h = newHistory(2, 2000, 500, T0);
  const states: string[][] = [[]];
  const live: string[] = [];
  let n = 0;
  const prefix = [0, 0, 0];
  let at = 0;
  for (const s of steps) {
    at += 10;
    if (s === 'reg') {
      const id = `web-${++n}`;
      h.ops.push(op('register', id, at));
      live.push(id);
      states.push([...live]);
    } else if (s === 'dereg') {
      const id = live.shift();
      if (id === undefined) continue;
      h.ops.push(op('deregister', id, at));
      states.push([...live]);
    } else {
      const target = Math.max(prefix[s.sub] ?? 0, states.length - 1 - s.lag);
      prefix[s.sub] = target;
      h.observations.push({ ...obs(at, target + 1, states[target] ?? [], `s${s.sub}`) });
    }
  }
  if (unknownLast) h.ops.push(op('register', 'web-late', at + 5, 'unknown'));
  h.healedAt = T0 + at + 20;
  for (let sub = 0; sub < 3; sub++) h.observations.push(obs(at + 30 + sub, states.length, live, `s${sub}`));
  h.tableWrites.push({ time: T0, epoch: 1, revision: 3, writer: 'meta-1' });
  h.tableWrites.push({ time: T0 + 5000, epoch: 2, revision: 4, writer: 'meta-2' });
  return h;
}

describe('robustness schedules', () => {
  const cluster = {
    members: [
      'etcd',
      'meta-1',
      'meta-2',
      'data-1',
      'data-2',
      'session-1',
      'session-2',
      'agent-1',
      'agent-2',
    ].map((name) => ({ name, role: name.replace(/-\d+$/, '') })),
    proxies: new Map(
      ['etcd<-meta-1', 'etcd<-meta-2', 'meta-1', 'meta-2', 'data-1', 'data-2', 'session-1', 'session-2'].map(
        (n) => [n, {}],
      ),
    ),
  } as unknown as Parameters<typeof drawSchedule>[1];

  test('schedule - a seed draws the same schedule every time, another seed another one', () => {
    const a = drawSchedule(new Random(42), cluster, 15_000);
    assert.deepEqual(drawSchedule(new Random(42), cluster, 15_000), a);
    assert.notDeepEqual(drawSchedule(new Random(43), cluster, 15_000), a);
  });

  test('schedule - faults fit the window, hit distinct targets, never disturb both sessions or both data servers', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const faults = drawSchedule(new Random(seed), cluster, 15_000);
        assert.ok(faults.length >= 1 && faults.length <= 4);
        assert.equal(new Set(faults.map((f) => f.target)).size, faults.length);
        for (const f of faults) assert.ok(f.atMs >= 500 && f.atMs + f.durationMs <= 15_000, describeFault(f));
        for (const family of ['session', 'data', 'agent']) {
          const hit = faults.filter(
            (f) => ['kill', 'stop', 'blackhole'].includes(f.kind) && f.target.startsWith(`${family}-`),
          );
          assert.ok(hit.length <= 1, `${family}: ${hit.map(describeFault).join(', ')}`);
        }
      }),
      { numRuns: 300 },
    );
  });
});

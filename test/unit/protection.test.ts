import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Protection, type ProtectionOptions } from '../../control-plane/link/protection.js';
import {
  protectionView,
  releaseProtection,
  withProtection,
} from '../../control-plane/link/protection-ops.js';
import { isLocal, PROCESS_NONCE } from '../../control-plane/link/local-process.js';
import { decodeAdminProtection } from '../../proto/admin-api.js';
import { CLUSTER_PROTOCOL_VERSION, decodeLinkHello } from '../../proto/rpc.js';
import { createLogger } from '../../proto/runtime/log.js';

const quiet = createLogger('error', {}, () => undefined);

function clocked(opts: ProtectionOptions): { p: Protection; advance: (ms: number) => void } {
  let now = 0;
  return {
    p: new Protection('members', opts, quiet, () => now),
    advance: (ms) => {
      now += ms;
    },
  };
}

test('protection - within a window at most max(floor, share of the population) goes; the rest is held', () => {
  const { p, advance } = clocked({ maxRemovalPercent: 15, windowMs: 60_000, minRemovals: 1 });
  // 20 members: 15 % is 3.
  assert.deepEqual(
    ['a', 'b', 'c', 'd', 'e'].map((id) => p.admit(id, 20)),
    [true, true, true, false, false],
  );
  assert.deepEqual(p.status().held, ['d', 'e']);
  assert.equal(p.active, true);
  advance(60_000);
  assert.equal(p.admit('d', 20), false, 'a held item stays held when the window moves on');
  assert.equal(p.admit('f', 20), true, 'a new window allows new removals');
  assert.equal(p.recovered('d'), true);
  assert.equal(p.recovered('d'), false);
  assert.equal(p.active, true);
  let removed: readonly string[] = [];
  p.onRelease((ids) => {
    removed = ids;
  });
  assert.deepEqual(p.release(), ['e']);
  assert.deepEqual(removed, ['e'], 'the owner removes exactly what was held');
  assert.equal(p.active, false);
  assert.equal(p.status().released, 1);
});

test('protection - the floor lets a two-member cluster lose one member; 0 holds everything', () => {
  assert.equal(clocked({ maxRemovalPercent: 15, windowMs: 1000, minRemovals: 1 }).p.admit('a', 2), true);
  const none = clocked({ maxRemovalPercent: 15, windowMs: 1000, minRemovals: 0 }).p;
  assert.equal(none.admit('a', 2), false);
  assert.equal(clocked({ maxRemovalPercent: 100, windowMs: 1000, minRemovals: 0 }).p.budget(7), 7);
});

test('protection - health turns degraded with the reason, and the admin body decodes', () => {
  const { p } = clocked({ maxRemovalPercent: 0, windowMs: 1000, minRemovals: 0 });
  const host = { role: 'session' as const, kind: 'connections' as const, id: () => 's1', protection: p };
  assert.deepEqual(withProtection({ status: 'ok' }, host), { status: 'ok', protection: { active: false } });
  p.admit('c1', 3);
  const h = withProtection({ status: 'ok' }, host);
  assert.equal(h['status'], 'degraded');
  assert.match(String(h['reason']), /protection mode: 1 connections held/);
  const view = decodeAdminProtection(JSON.parse(JSON.stringify(protectionView(host))));
  assert.ok(view.ok && view.value.active && view.value.held[0] === 'c1');
  const released = decodeAdminProtection(JSON.parse(JSON.stringify(releaseProtection(host))));
  assert.ok(released.ok);
  assert.deepEqual(released.value.removed, ['c1']);
  assert.equal(released.value.active, false);
  const bad = decodeAdminProtection({ ...protectionView(host), kind: 'x', held: [1] });
  assert.ok(!bad.ok);
  assert.deepEqual(bad.errors.map((e) => e.path).sort(), ['held[0]', 'kind']);
});

type Op =
  | { readonly op: 'admit'; readonly id: number; readonly population: number }
  | { readonly op: 'advance'; readonly ms: number }
  | { readonly op: 'recover'; readonly id: number }
  | { readonly op: 'deregister'; readonly id: number }
  | { readonly op: 'release' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('admit' as const),
      id: fc.nat(30),
      population: fc.integer({ min: 1, max: 60 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.nat(40_000) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('recover' as const), id: fc.nat(30) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('deregister' as const), id: fc.nat(30) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'release' as const }) },
);

test('protection - property: never more removals in any window than the share allows, unless released; deregistrations always pass', () => {
  fc.assert(
    fc.property(
      fc.array(opArb, { maxLength: 200 }),
      fc.integer({ min: 0, max: 100 }),
      fc.nat(3),
      (ops, percent, floor) => {
        const windowMs = 60_000;
        const { p, advance } = clocked({ maxRemovalPercent: percent, windowMs, minRemovals: floor });
        let now = 0;
        const admitted: number[] = [];
        const releasedIds = new Set<string>();
        p.onRelease((ids) => {
          for (const id of ids) releasedIds.add(id);
        });
        for (const o of ops) {
          switch (o.op) {
            case 'advance':
              advance(o.ms);
              now += o.ms;
              break;
            case 'admit': {
              const id = `m${o.id}`;
              const wasHeld = p.isHeld(id);
              const ok = p.admit(id, o.population);
              if (wasHeld) assert.equal(ok, false, 'a held item is not removed by asking again');
              if (ok) {
                admitted.push(now);
                const inWindow = admitted.filter((t) => t > now - windowMs).length;
                const budget = Math.max(floor, Math.floor((o.population * percent) / 100));
                assert.ok(inWindow <= budget, `${inWindow} removals in a window, budget ${budget}`);
              } else assert.equal(p.isHeld(id), true, 'what is not removed is held');
              break;
            }
            case 'recover':
              p.recovered(`m${o.id}`);
              assert.equal(p.isHeld(`m${o.id}`), false);
              break;
            case 'deregister': {
              // A real deregistration never asks: it is forgotten, not counted, never held.
              const before = p.status().removedInWindow;
              p.forget(`m${o.id}`);
              assert.equal(p.isHeld(`m${o.id}`), false);
              assert.equal(p.status().removedInWindow, before);
              break;
            }
            case 'release': {
              const held = p.status().held;
              assert.deepEqual(p.release(), held, 'a release removes exactly what was held');
              assert.equal(p.active, false);
              break;
            }
          }
          assert.equal(p.active, p.status().held.length > 0);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('protection - link hello: the process nonce is optional (older peers), and only this process is local', () => {
  const hello = {
    role: 'data',
    id: 'd1',
    url: 'ws://d1',
    protocolVersion: CLUSTER_PROTOCOL_VERSION,
    token: 't',
  };
  const old = decodeLinkHello(hello);
  assert.ok(old.ok);
  assert.equal(old.value.process, undefined);
  assert.equal(isLocal(old.value), false, 'a peer that says no nonce is remote');
  const mine = decodeLinkHello({ ...hello, process: PROCESS_NONCE });
  assert.ok(mine.ok && isLocal(mine.value));
  const other = decodeLinkHello({ ...hello, process: 'another-process' });
  assert.ok(other.ok && !isLocal(other.value));
  const bad = decodeLinkHello({ ...hello, process: 7 });
  assert.ok(!bad.ok);
  assert.deepEqual(
    bad.errors.map((e) => e.path),
    ['process'],
  );
});

/**
 * Connection accounting of a role port: random sequences of opens, handshakes and closes (each
 * call repeated or out of order) never make a count negative, never leak one, and never let an
 * address or the pending handshakes pass their bound.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ConnLimits, type ConnTicket } from '../../control-plane/link/conn-limits.js';

type Step =
  { readonly op: 'open'; readonly ip: number } | { readonly op: 'done' | 'close'; readonly pick: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constant('open' as const), ip: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ op: fc.constantFrom('done' as const, 'close' as const), pick: fc.nat() }),
);

test('conn-limits - counts stay exact and within bounds under any sequence of open, handshake-done and close', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 8 }),
      fc.array(step, { maxLength: 200 }),
      (maxPerIp, maxPending, steps) => {
        const limits = new ConnLimits({ maxPerIp, maxPending });
        const admitted: { ip: string; ticket: ConnTicket; open: boolean; pending: boolean }[] = [];
        let refused = 0;
        for (const s of steps) {
          if (s.op === 'open') {
            const ip = `10.0.0.${String(s.ip)}`;
            const a = limits.admit(ip);
            if (a.ok) admitted.push({ ip, ticket: a.ticket, open: true, pending: true });
            else refused++;
          } else if (admitted.length > 0) {
            const c = admitted[s.pick % admitted.length];
            if (c === undefined) continue;
            if (s.op === 'done') {
              c.ticket.handshakeDone();
              c.pending = false;
            } else {
              c.ticket.closed();
              c.open = false;
              c.pending = false;
            }
          }
          // The model: what is open, what is pending, per address.
          const open = admitted.filter((c) => c.open);
          const counts = limits.counts();
          assert.equal(counts.open, open.length);
          assert.equal(counts.pending, admitted.filter((c) => c.pending).length);
          assert.ok(counts.pending >= 0 && counts.pending <= maxPending);
          assert.equal(counts.addresses, new Set(open.map((c) => c.ip)).size);
          for (const ip of new Set(admitted.map((c) => c.ip))) {
            const held = open.filter((c) => c.ip === ip).length;
            assert.equal(limits.heldBy(ip), held);
            assert.ok(held <= maxPerIp);
          }
          assert.equal(counts.refused.per_ip + counts.refused.pending, refused);
        }
        // Closing everything (twice) leaves nothing behind.
        for (const c of admitted) {
          c.ticket.closed();
          c.ticket.closed();
        }
        assert.deepEqual(
          { ...limits.counts(), refused: undefined },
          { open: 0, pending: 0, addresses: 0, refused: undefined },
        );
      },
    ),
    { numRuns: 300 },
  );
});

test('conn-limits - an address over its bound is refused while another is admitted', () => {
  const limits = new ConnLimits({ maxPerIp: 2, maxPending: 100 });
  assert.ok(limits.admit('a').ok);
  assert.ok(limits.admit('a').ok);
  assert.deepEqual(limits.admit('a'), { ok: false, reason: 'per_ip' });
  assert.ok(limits.admit('b').ok);
  assert.equal(limits.counts().refused.per_ip, 1);
});

test('conn-limits - pending handshakes are bounded, and a finished handshake frees its place', () => {
  const limits = new ConnLimits({ maxPerIp: 100, maxPending: 2 });
  const first = limits.admit('a');
  assert.ok(first.ok);
  assert.ok(limits.admit('b').ok);
  assert.deepEqual(limits.admit('c'), { ok: false, reason: 'pending' });
  first.ticket.handshakeDone();
  assert.equal(first.ticket.pending, false);
  assert.ok(limits.admit('c').ok, 'a place was freed');
  assert.equal(limits.counts().open, 3);
});

test('conn-limits - bounds below 1 are a bug of the caller', () => {
  assert.throws(() => new ConnLimits({ maxPerIp: 0, maxPending: 1 }));
});

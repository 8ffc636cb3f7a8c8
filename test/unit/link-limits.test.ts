/**
 * The pieces that keep links bounded: the `ws` internals the frame limits rely on (this fails when a
 * `ws` upgrade moves them), the per-connection log budget, and the pager of large answers.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { closeOversizedWithReason, maxPayloadOf, setMaxPayload } from '../../control-plane/link/ws-limits.js';
import { LogBudget } from '../../control-plane/link/log-budget.js';
import { Pager } from '../../control-plane/link/pager.js';
import { createLogger } from '../../proto/runtime/log.js';
import { MeshregError } from '../../proto/errors.js';

/** A loopback server whose connections start with `maxPayload`; `onConnection` sees each one. */
async function server(
  t: { after(fn: () => void | Promise<void>): void },
  maxPayload: number,
  onConnection: (ws: WebSocket) => void,
): Promise<string> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload, perMessageDeflate: false });
  wss.on('connection', (ws) => {
    // ws reports the refused frame as an error too (the production links log it).
    ws.on('error', () => undefined);
    onConnection(ws);
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  t.after(() => new Promise<void>((resolve) => wss.close(() => resolve())));
  return `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
}

function exchange(url: string, frames: string[]): Promise<{ code: number; reason: string; echoed: number }> {
  const ws = new WebSocket(url);
  let echoed = 0;
  ws.on('open', () => {
    for (const f of frames) ws.send(f);
  });
  ws.on('message', () => {
    echoed++;
    if (echoed === frames.length) ws.close(1000, 'done');
  });
  ws.on('error', () => undefined);
  return new Promise((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString(), echoed });
    });
  });
}

test('ws limits - the receiver internals exist and the limit starts at the server maxPayload', async (t) => {
  let seen = -1;
  const url = await server(t, 1234, (ws) => {
    seen = maxPayloadOf(ws);
    ws.close();
  });
  await exchange(url, []);
  assert.equal(seen, 1234);
});

test('ws limits - a frame over the limit closes 1009 with a reason naming the limit', async (t) => {
  let tooLarge = 0;
  const url = await server(t, 1024, (ws) => {
    closeOversizedWithReason(ws, (limit) => {
      tooLarge = limit;
    });
    ws.on('message', (d) => ws.send(d));
  });
  const r = await exchange(url, ['x'.repeat(2000)]);
  assert.equal(r.code, 1009);
  assert.equal(r.reason, 'payload_too_large: frame over 1024 bytes');
  assert.equal(tooLarge, 1024);
});

test('ws limits - raising the limit after the first frame lets larger frames through', async (t) => {
  const url = await server(t, 1024, (ws) => {
    closeOversizedWithReason(ws, () => undefined);
    ws.on('message', (d) => {
      setMaxPayload(ws, 100_000);
      ws.send(d);
    });
  });
  const r = await exchange(url, ['hello', 'y'.repeat(50_000)]);
  assert.equal(r.echoed, 2);
  assert.equal(r.code, 1000);
});

test('log budget - writes the first lines, counts the rest, then says how many were suppressed', () => {
  const lines: string[] = [];
  let now = 0;
  const log = new LogBudget(
    createLogger('debug', {}, (l) => lines.push(l)),
    { burst: 3, windowMs: 1000, now: () => now },
  );
  for (let i = 0; i < 5000; i++) log.warn('frame refused', { i });
  assert.equal(lines.length, 3);
  assert.equal(log.suppressed, 4997);
  now = 1500;
  log.info('next window');
  assert.equal(lines.length, 5);
  assert.match(lines[3] ?? '', /"suppressed":4997/);
  assert.match(lines[4] ?? '', /next window/);
  log.flush();
  assert.equal(lines.length, 5, 'nothing pending: flush writes nothing');
});

test('pager - pages stay under the byte budget, keep order and lose nothing', (t) => {
  const pager = new Pager({ pageBytes: 1000, ttlMs: 10_000, maxOpen: 2 });
  t.after(() => {
    pager.close();
  });
  const items = Array.from({ length: 500 }, (_, i) => ({ i, pad: 'p'.repeat(i % 50) }));
  const got: unknown[] = [];
  let page = pager.first(items);
  let pages = 1;
  for (;;) {
    assert.ok(Buffer.byteLength(JSON.stringify(page.items)) <= 1000 + page.items.length);
    got.push(...page.items);
    if (page.cursor === undefined) break;
    page = pager.next(page.cursor);
    pages++;
  }
  assert.deepEqual(got, items);
  assert.ok(pages > 10, `${pages} pages`);
  assert.equal(pager.open, 0, 'a finished cursor is released');
});

test('pager - an item larger than the budget still goes (alone), unknown cursors are not_found', (t) => {
  const pager = new Pager({ pageBytes: 10, ttlMs: 10_000, maxOpen: 1 });
  t.after(() => {
    pager.close();
  });
  const first = pager.first(['a'.repeat(100), 'b']);
  assert.deepEqual(first.items, ['a'.repeat(100)]);
  assert.throws(
    () => pager.next('nope'),
    (e: unknown) => e instanceof MeshregError && e.code === 'not_found',
  );
  // Opening a second cursor past maxOpen drops the oldest.
  const second = pager.first(['c'.repeat(100), 'd']);
  assert.equal(pager.open, 1);
  assert.throws(() => pager.next(first.cursor ?? ''), MeshregError);
  assert.deepEqual(pager.next(second.cursor ?? '').items, ['d']);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SOCKET_CLOSED, SOCKET_OPEN, frameText } from '../../proto/runtime/link-socket.js';
import { socketPair } from '../support/socket-pair.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('socket-pair - frames arrive in order, later, and only once open', async () => {
  const { a, b } = socketPair();
  const got: string[] = [];
  b.on('message', (d) => got.push(frameText(d)));
  a.send('early');
  a.open();
  assert.equal(b.readyState, SOCKET_OPEN);
  a.send('one');
  a.send('two');
  assert.deepEqual(got, [], 'nothing is delivered inside send');
  await tick();
  await tick();
  assert.deepEqual(got, ['one', 'two']);
  assert.deepEqual(a.sent, ['one', 'two']);
});

test('socket-pair - hold queues frames until release; close reaches both ends', async () => {
  const { a, b } = socketPair();
  a.open();
  const got: string[] = [];
  b.on('message', (d) => got.push(frameText(d)));
  a.hold();
  a.send('x');
  await tick();
  assert.deepEqual(got, []);
  assert.equal(a.bufferedAmount, 1);
  a.release();
  await tick();
  assert.deepEqual(got, ['x']);
  assert.equal(a.bufferedAmount, 0);
  const closed = new Promise<number>((r) => b.once('close', (code) => r(code)));
  a.close(4000, 'bad');
  assert.equal(await closed, 4000);
  assert.equal(a.readyState, SOCKET_CLOSED);
  assert.deepEqual(b.closedWith, { code: 4000, reason: 'bad' });
});

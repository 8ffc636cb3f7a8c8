/**
 * The session's data client (RemoteDataClient) against a fake data server on a loopback socket:
 * interest is batched and re-declared in full after a reconnect, the server's error codes reach
 * the caller, and a server that does not answer costs a call its timeout, not more.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { DatumChange } from '../../proto/cluster-records.js';
import { MeshregError, type ErrorCode } from '../../proto/errors.js';
import { silentLogger } from '../../proto/runtime/log.js';
import { RemoteDataClient } from '../../control-plane/session/remote-data.js';
import { FakeDataServer } from '../support/fake-data-server.js';
import { waitFor } from '../support/wait.js';

const CALL_TIMEOUT_MS = 300;

async function connected(t: TestContext): Promise<{ server: FakeDataServer; client: RemoteDataClient }> {
  const server = await FakeDataServer.start();
  const client = new RemoteDataClient(
    { id: 'fake-data', url: server.url },
    {
      sessionId: 'session-1',
      sessionUrl: 'ws://127.0.0.1:1/v1/agent',
      token: 't',
      callTimeoutMs: CALL_TIMEOUT_MS,
      maxFrameBytes: 1024 * 1024,
      logger: silentLogger,
      collect: () => [],
      onConnected: () => undefined,
      retry: { initialMs: 50, maxMs: 2000 },
    },
  );
  t.after(async () => {
    client.stop();
    await server.close();
  });
  client.start();
  await waitFor('the client connects', () => client.connected && server.interest.length === 1);
  return { server, client };
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof MeshregError && err.code === code);
}

/** A listener that records what it is told. */
function recorder(): {
  changes: DatumChange[][];
  catalog: number[];
  listener: Parameters<RemoteDataClient['watch']>[1];
} {
  const changes: DatumChange[][] = [];
  const catalog: number[] = [];
  return {
    changes,
    catalog,
    listener: { onChange: (c) => changes.push([...c]), onCatalogChange: (v) => catalog.push(v) },
  };
}

test('remote data - a connect declares the whole interest, then changes go out batched per tick', async (t) => {
  const { server, client } = await connected(t);
  assert.equal(server.hellos[0]?.role, 'session');
  assert.equal(server.hellos[0]?.id, 'session-1');
  assert.deepEqual(server.interest, [{ add: [], remove: [], catalog: false }]);
  const w = client.watch('session-1', recorder().listener);
  w.interest('a', true);
  w.interest('b', true);
  w.interest('c', true);
  w.interest('c', false);
  w.catalogInterest(true);
  await waitFor('the batch', () => server.interest.length === 2);
  assert.deepEqual(server.interest[1], { add: ['a', 'b'], remove: ['c'], catalog: true });
  w.interest('a', true); // already declared: nothing to send
  w.interest('b', false);
  await waitFor('the second batch', () => server.interest.length === 3);
  assert.deepEqual(server.interest[2], { add: [], remove: ['b'] });
});

test('remote data - after the server drops the link, the client reconnects and declares everything again', async (t) => {
  const { server, client } = await connected(t);
  const seen = recorder();
  const w = client.watch('session-1', seen.listener);
  w.interest('a', true);
  w.interest('b', true);
  w.catalogInterest(true);
  await waitFor('the batch', () => server.interest.length === 2);
  server.dropLinks();
  await waitFor('the link is down', () => !client.connected);
  await waitFor('a new hello', () => server.hellos.length === 2 && server.interest.length === 3, 5000);
  assert.deepEqual(server.interest[2], { add: ['a', 'b'], remove: [], catalog: true });
  // The new link carries change notices, filtered to what this session watches.
  server.emitChanges([
    { key: 'a', version: 5 },
    { key: 'z', version: 9 },
  ]);
  await waitFor('the change', () => seen.changes.length > 0);
  assert.deepEqual(seen.changes, [[{ key: 'a', version: 5 }]]);
});

test('remote data - an error code from the server reaches the caller as that code', async (t) => {
  const { server, client } = await connected(t);
  assert.deepEqual(await client.fetch('web'), { key: 'web', version: 1, complete: true, instances: [] });
  server.failWith = 'stale_epoch';
  await rejectsWith(client.fetch('web'), 'stale_epoch');
  server.failWith = 'not_found';
  await rejectsWith(client.dropOwner('session-1:1'), 'not_found');
});

test('remote data - a call to a server that does not answer fails unavailable within the call timeout', async (t) => {
  const { server, client } = await connected(t);
  server.silent = true;
  const started = performance.now();
  await rejectsWith(client.fetch('web'), 'unavailable');
  const took = performance.now() - started;
  assert.ok(took >= CALL_TIMEOUT_MS - 5 && took < CALL_TIMEOUT_MS + 700, `failed after ${took} ms`);
  // A client without a link fails at once, the same way.
  server.dropLinks();
  await waitFor('the link is down', () => !client.connected);
  await rejectsWith(client.fetch('web'), 'unavailable');
});

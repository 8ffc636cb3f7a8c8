/**
 * RpcPeer over an in-memory socket pair: typed calls and handlers decode on both sides, failures
 * arrive as codes, the link fails on what it cannot read, and paged results come back whole.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { RpcPeer, type RpcPeerOptions } from '../../control-plane/link/rpc-peer.js';
import type { OwnedPublisher } from '../../proto/cluster-records.js';
import { DATA_LINK } from '../../proto/data-link.js';
import { MeshregError, type ErrorCode } from '../../proto/errors.js';
import { META_LINK } from '../../proto/meta-link.js';
import {
  CLUSTER_PROTOCOL_VERSION,
  HELLO_METHOD,
  decodeAck,
  rpcEvent,
  rpcMethod,
  type Decoder,
} from '../../proto/rpc.js';
import { createLogger } from '../../proto/runtime/log.js';
import { makeInstance } from '../support/fixtures.js';
import { socketPair, type MemorySocket } from '../support/socket-pair.js';
import { waitFor } from '../support/wait.js';

/** Takes anything as it is: a definition that lets a test send what the real one would refuse. */
const anything: Decoder<unknown> = (raw) => ({ ok: true, value: raw });

interface Linked {
  readonly client: RpcPeer;
  readonly server: RpcPeer;
  readonly clientSocket: MemorySocket;
  readonly serverSocket: MemorySocket;
  /** Log lines either peer wrote. */
  readonly logs: string[];
}

/** Two peers joined by an open in-memory socket pair; `server` options override the defaults. */
function link(t: TestContext, server: Partial<RpcPeerOptions> = {}): Linked {
  const { a, b } = socketPair();
  const logs: string[] = [];
  const logger = createLogger('debug', {}, (line) => logs.push(line));
  const opts: RpcPeerOptions = { callTimeoutMs: 1000, logger, pageBytes: 64 * 1024 };
  const linked = {
    client: new RpcPeer(a, opts),
    server: new RpcPeer(b, { ...opts, ...server }),
    clientSocket: a,
    serverSocket: b,
    logs,
  };
  a.open();
  t.after(() => {
    a.terminate();
  });
  return linked;
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof MeshregError, `a MeshregError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message !== undefined) assert.match(err.message, message);
    return true;
  });
}

const view = {
  key: 'web',
  version: 7,
  complete: true,
  instances: [makeInstance({ id: 'web-1', service: 'web' })],
};

test('rpc peer - a call and its handler round-trip typed values, on the wire as before', async (t) => {
  const { client, server, clientSocket } = link(t);
  const seen: string[] = [];
  server.handle(DATA_LINK.fetch, (p) => {
    seen.push(p.key);
    return view;
  });
  assert.deepEqual(await client.call(DATA_LINK.fetch, { key: 'web' }), view);
  assert.deepEqual(seen, ['web']);
  assert.deepEqual(clientSocket.sentFrames(), [{ t: 'req', id: 1, method: 'fetch', params: { key: 'web' } }]);
});

test('rpc peer - a call that gets no answer rejects unavailable after its timeout', async (t) => {
  const { client, server } = link(t, {});
  server.handle(DATA_LINK.fetch, () => new Promise<never>(() => undefined));
  const started = performance.now();
  await rejectsWith(client.call(DATA_LINK.fetch, { key: 'web' }, 80), 'unavailable', /timed out after 80 ms/);
  const took = performance.now() - started;
  assert.ok(took >= 75 && took < 1000, `rejected after ${took} ms`);
  assert.equal(client.isOpen, true, 'a timeout does not fail the link');
});

test("rpc peer - a peer's error code arrives as that code; an unknown code or a crash as internal", async (t) => {
  const { client, server, clientSocket } = link(t);
  server.handle(DATA_LINK.fetch, () => {
    throw new MeshregError('stale_epoch', 'epoch 3 < 4');
  });
  server.handle(DATA_LINK.dropOwner, () => {
    throw new Error('bug');
  });
  await rejectsWith(client.call(DATA_LINK.fetch, { key: 'web' }), 'stale_epoch', /epoch 3 < 4/);
  await rejectsWith(client.call(DATA_LINK.dropOwner, { owner: 's:1' }), 'internal', /^internal error$/);
  await rejectsWith(client.call(DATA_LINK.versions, { keys: [] }), 'not_found', /unknown method versions/);
  // A code this side does not know (a newer peer's): answered by hand.
  const pending = client.call(DATA_LINK.fetch, { key: 'web' });
  const id = (clientSocket.sentFrames().at(-1) as { id: number }).id;
  clientSocket.receive(
    Buffer.from(JSON.stringify({ t: 'res', id, ok: false, error: { code: 'brand_new', message: 'm' } })),
  );
  await rejectsWith(pending, 'internal', /^m$/);
});

test('rpc peer - bad params are answered invalid_argument naming every field; the link stays up', async (t) => {
  const { client, server } = link(t);
  let called = false;
  server.handle(DATA_LINK.publish, () => {
    called = true;
    return { outcomes: [] };
  });
  const laxPublish = rpcMethod('publish', anything, decodeAck);
  await rejectsWith(
    client.call(laxPublish, { epoch: -1, items: 'no' }),
    'invalid_argument',
    /epoch: must be an integer.*owner: is required.*items: must be an array/,
  );
  assert.equal(called, false, 'the handler never sees bad params');
  assert.equal(server.isOpen, true);
});

test('rpc peer - a result that does not decode rejects invalid_frame', async (t) => {
  const { client, server } = link(t);
  server.handle(rpcMethod('fetch', anything, anything), () => ({ key: 'web', complete: 'yes' }));
  await rejectsWith(
    client.call(DATA_LINK.fetch, { key: 'web' }),
    'invalid_frame',
    /bad fetch result: version: is required; complete: must be true or false/,
  );
});

test('rpc peer - a frame it cannot read closes the link with 4000', async (t) => {
  for (const frame of ['not json', JSON.stringify({ t: 'what' }), JSON.stringify({ t: 'req', id: 'x' })]) {
    const { server, serverSocket } = link(t);
    serverSocket.receive(Buffer.from(frame));
    const closed = await server.closed;
    assert.equal(closed.code, 4000, frame);
    assert.match(closed.reason, /^invalid_frame: /);
  }
  const { server, serverSocket } = link(t);
  serverSocket.receive(Buffer.from('{}'), true);
  assert.equal((await server.closed).code, 4000, 'a binary frame');
});

const hello = {
  role: 'session',
  id: 's-1',
  url: '',
  protocolVersion: CLUSTER_PROTOCOL_VERSION,
  token: 't',
} as const;

test('rpc peer - with a first method, anything else first fails the link', async (t) => {
  const { client, server } = link(t, { firstMethod: HELLO_METHOD });
  server.handle(META_LINK.heartbeat, () => ({ epoch: 1 }));
  const call = client.call(META_LINK.heartbeat, { id: 's-1' });
  assert.deepEqual(await server.closed, { code: 4000, reason: 'invalid_frame: expected hello first' });
  await rejectsWith(call, 'unavailable', /link closed/);
});

test('rpc peer - a first request with bad params fails the link after answering invalid_frame', async (t) => {
  const { client, server } = link(t, { firstMethod: HELLO_METHOD });
  server.handle(HELLO_METHOD, () => ({}));
  await rejectsWith(
    client.call(rpcMethod('hello', anything, anything), { role: 'nobody' }),
    'invalid_frame',
    /bad hello: role: must be one of/,
  );
  const closed = await server.closed;
  assert.equal(closed.code, 4000);
  assert.match(closed.reason, /^invalid_frame: bad hello/);
});

test('rpc peer - once the hello is accepted, other methods are served', async (t) => {
  const { client, server } = link(t, { firstMethod: HELLO_METHOD });
  server.handle(HELLO_METHOD, (h) => {
    server.authenticated();
    return { id: `hi ${h.id}` };
  });
  server.handle(META_LINK.heartbeat, () => ({ epoch: 9 }));
  assert.deepEqual(await client.call(HELLO_METHOD, hello), { id: 'hi s-1' });
  assert.deepEqual(await client.call(META_LINK.heartbeat, { id: 's-1' }), { epoch: 9 });
});

test('rpc peer - a paged result comes back whole, over several pages, in order', async (t) => {
  const { client, server, clientSocket } = link(t, { pageBytes: 2048 });
  const publishers: OwnedPublisher[] = Array.from({ length: 60 }, (_, i) => ({
    owner: 's:1',
    registrationId: `web-${i}`,
    instance: makeInstance({ id: `web-${i}`, service: 'web' }),
    version: i + 1,
  }));
  const asked: number[][] = [];
  server.handlePaged(DATA_LINK.collect, (p) => {
    asked.push([...p.slots]);
    return publishers;
  });
  const got = await client.callPaged(DATA_LINK.collect, { slots: [1, 2], slotCount: 8 });
  assert.deepEqual(got, publishers);
  assert.deepEqual(asked, [[1, 2]], 'the list is produced once');
  const methods = clientSocket.sentFrames().map((f) => (f as { method: string }).method);
  assert.equal(methods[0], 'collect');
  assert.ok(methods.length > 3, `${methods.length} requests`);
  assert.ok(
    methods.slice(1).every((m) => m === 'page'),
    methods.join(),
  );
});

test('rpc peer - pending calls reject unavailable when the socket closes', async (t) => {
  const { client, server, serverSocket } = link(t);
  server.handle(DATA_LINK.fetch, () => new Promise<never>(() => undefined));
  const calls = [client.call(DATA_LINK.fetch, { key: 'a' }), client.call(DATA_LINK.fetch, { key: 'b' })];
  await waitFor('both requests arrive', () => serverSocket.peer?.sent.length === 2);
  serverSocket.close(1001, 'going away');
  for (const c of calls) await rejectsWith(c, 'unavailable', /link closed/);
  assert.equal(client.isOpen, false);
  await rejectsWith(client.call(DATA_LINK.fetch, { key: 'c' }), 'unavailable', /link not open for fetch/);
});

test('rpc peer - an event with a bad payload is logged and dropped; the link stays up', async (t) => {
  const { client, server, logs } = link(t);
  const versions: number[] = [];
  client.on(DATA_LINK.catalog, (e) => versions.push(e.version));
  const laxCatalog = rpcEvent('catalog', anything);
  server.emit(laxCatalog, { version: 'new' });
  server.emit(DATA_LINK.catalog, { version: 3 });
  await waitFor('the good event', () => versions.length > 0);
  assert.deepEqual(versions, [3]);
  assert.equal(client.isOpen, true);
  const dropped = logs.filter((l) => l.includes('bad event payload'));
  assert.equal(dropped.length, 1, logs.join('\n'));
  assert.match(dropped[0] ?? '', /version: must be an integer/);
});

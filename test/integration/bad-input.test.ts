/**
 * Bad input is contained: HTTP errors name the field, invalid WebSocket frames close only their own
 * connection with a documented code, wrong credentials are refused, and the process keeps serving.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { PROTOCOL_VERSION } from '../../proto/agent-link.js';
import { http, header } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'bad-input-token';

interface Closed {
  readonly code: number;
  readonly reason: string;
}

/** Opens a raw WebSocket to the session, sends `frames` in order, and resolves when it closes. */
function rawSession(
  url: string,
  frames: (string | Buffer)[],
): { closed: Promise<Closed>; ws: WebSocket; messages: unknown[] } {
  const ws = new WebSocket(url);
  const messages: unknown[] = [];
  ws.on('open', () => {
    for (const f of frames) ws.send(f);
  });
  ws.on('message', (d) => {
    messages.push(JSON.parse((d as Buffer).toString('utf8')) as unknown);
  });
  const closed = new Promise<Closed>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
    });
  });
  return { closed, ws, messages };
}

const hello = (token: string, protocolVersion = PROTOCOL_VERSION): string =>
  JSON.stringify({ type: 'hello', protocolVersion, nodeId: `raw-${Math.random()}`, nodeName: 'raw', token });

describe('bad input', () => {
  let dev: Started;
  let agent = '';
  let session = '';
  let cleanup: () => Promise<void> = () => Promise.resolve();

  before(async () => {
    const tmp = await tempDir();
    cleanup = tmp.cleanup;
    dev = await startMeshreg('dev', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_AGENT_PORT: '0',
      MESHREG_SESSION_PORT: '0',
      MESHREG_AGENT_DATA_DIR: tmp.dir,
      MESHREG_AGENT_MAX_BODY_BYTES: '4096',
      MESHREG_SESSION_MAX_FRAME_BYTES: '65536',
    });
    agent = dev.addresses['agent'] ?? '';
    session = dev.addresses['session'] ?? '';
  });

  after(async () => {
    assert.equal(await dev.stop(), 0, 'dev stops cleanly with exit code 0');
    await cleanup();
  });

  test('http - malformed JSON gets a 400 with a JSON error', async () => {
    const res = await http('PUT', `${agent}/v1/agent/service/register`, '{"Name": "web",');
    assert.equal(res.status, 400);
    assert.equal(header(res, 'content-type'), 'application/json');
    const body = res.body as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'invalid_argument');
    assert.match(body.error.message, /not valid JSON/);
  });

  test('http - wrong types get a 400 naming every bad field', async () => {
    const res = await http('PUT', `${agent}/v1/agent/service/register`, {
      Name: 'web',
      Port: 'eighty',
      Tags: 'a',
      Meta: { k: 1 },
    });
    assert.equal(res.status, 400);
    const body = res.body as { error: { fields: { path: string; message: string }[] } };
    assert.deepEqual(
      body.error.fields.map((f) => f.path),
      ['Tags', 'Port', 'Meta.k'],
    );
    const missing = await http('PUT', `${agent}/v1/agent/service/register`, { Port: 80 });
    assert.equal(missing.status, 400);
    assert.deepEqual(
      (missing.body as { error: { fields: { path: string }[] } }).error.fields.map((f) => f.path),
      ['Name'],
    );
  });

  test('http - an oversized body is refused with 413', async () => {
    const res = await http('PUT', `${agent}/v1/agent/service/register`, {
      Name: 'web',
      Meta: { big: 'x'.repeat(5000) },
    });
    assert.equal(res.status, 413);
    assert.equal((res.body as { error: { code: string } }).error.code, 'payload_too_large');
  });

  test('http - bad query parameters and unknown routes get clear errors', async () => {
    const idx = await http('GET', `${agent}/v1/health/service/web?index=abc`);
    assert.equal(idx.status, 400);
    assert.equal((idx.body as { error: { fields: { path: string }[] } }).error.fields[0]?.path, 'index');
    const wait = await http('GET', `${agent}/v1/health/service/web?wait=forever`);
    assert.equal(wait.status, 400);
    const passing = await http('GET', `${agent}/v1/health/service/web?passing=maybe`);
    assert.equal(passing.status, 400);
    const name = await http('GET', `${agent}/v1/health/service/${encodeURIComponent('bad name!')}`);
    assert.equal(name.status, 400);
    const none = await http('GET', `${agent}/v1/nothing/here`);
    assert.equal(none.status, 404);
    const method = await http('POST', `${agent}/v1/agent/services`);
    assert.equal(method.status, 405);
  });

  test('ws - an invalid frame closes only that connection, with code 4000 and a reason', async () => {
    const good = rawSession(session, [
      hello(TOKEN),
      JSON.stringify({ type: 'subscribe', services: [{ service: 'web' }] }),
    ]);
    await waitFor('welcome on the good connection', () =>
      good.messages.some((m) => (m as { type: string }).type === 'welcome'),
    );
    const notJson = rawSession(session, [hello(TOKEN), '{nope']);
    const badField = rawSession(session, [
      hello(TOKEN),
      JSON.stringify({ type: 'publish', registrations: [{ instance: { id: 1 }, version: 0 }] }),
    ]);
    const binary = rawSession(session, [hello(TOKEN), Buffer.from([1, 2, 3])]);
    const beforeHello = rawSession(session, [JSON.stringify({ type: 'ping', sentAt: 1 })]);
    const c1 = await notJson.closed;
    assert.equal(c1.code, 4000);
    assert.match(c1.reason, /invalid_frame: frame is not valid JSON/);
    const c2 = await badField.closed;
    assert.equal(c2.code, 4000);
    assert.match(c2.reason, /registrations\[0\]\.instance\.id: must be a string/);
    assert.equal((await binary.closed).code, 4000);
    const c4 = await beforeHello.closed;
    assert.equal(c4.code, 4000);
    assert.match(c4.reason, /expected hello/);
    // The good connection is untouched: it still answers a ping.
    good.ws.send(JSON.stringify({ type: 'ping', sentAt: 7 }));
    await waitFor('pong on the good connection', () =>
      good.messages.some((m) => (m as { type: string; sentAt?: number }).sentAt === 7),
    );
    good.ws.close();
  });

  test('ws - an oversized frame closes with 1009', async () => {
    const big = rawSession(session, [
      hello(TOKEN),
      JSON.stringify({ type: 'ping', sentAt: 1, pad: 'x'.repeat(70_000) }),
    ]);
    assert.equal((await big.closed).code, 1009);
  });

  test('ws - a wrong or missing token is refused with 4001, a wrong protocol version with 4002', async () => {
    const wrong = await rawSession(session, [hello('not-the-token')]).closed;
    assert.equal(wrong.code, 4001);
    assert.match(wrong.reason, /unauthorized: wrong token/);
    const missing = await rawSession(session, [hello('')]).closed;
    assert.equal(missing.code, 4001);
    assert.match(missing.reason, /missing token/);
    const version = await rawSession(session, [hello(TOKEN, 99)]).closed;
    assert.equal(version.code, 4002);
  });

  test('bad input - the process still serves after all of the above', async () => {
    const reg = await http('PUT', `${agent}/v1/agent/service/register`, { Name: 'still-here', Port: 1 });
    assert.equal(reg.status, 200);
    const res = await http('GET', `${agent}/v1/health/service/still-here`);
    assert.equal((res.body as unknown[]).length, 1);
    const health = await http(
      'GET',
      `${session.replace('ws://', 'http://').replace('/v1/agent-link', '')}/health`,
    );
    assert.equal(health.status, 200);
    assert.equal((health.body as { status: string }).status, 'ok');
  });
});

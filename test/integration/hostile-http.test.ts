/**
 * Every HTTP edge of `meshreg dev` (agent, session, meta, data) answers hostile HTTP with a JSON
 * error and keeps serving; the agent's HTTP bounds (connections, blocking queries per client,
 * body time, Host rule for writes) answer as the README's Limits table says.
 *
 * Requests go over raw `node:net` sockets so the request target is exactly the bytes sent.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'hostile-http-token';
const ADMIN = 'hostile-admin-token';
const MAX_CONNECTIONS = 12;
const MAX_BLOCKING = 3;
const TARGETS = ['//', '//[', 'http://[', '//x:99999/admin'];

interface RawAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: unknown;
  /** Bytes received before the socket closed (0 for a refused connection). */
  readonly bytes: number;
}

interface ErrorBody {
  readonly error: { code: string; message: string; fields?: { path: string; message: string }[] };
}

/** Opens a socket, writes `text` as is, and resolves with the answer when the socket closes. */
function openRaw(
  port: number,
  text: string,
  timeoutMs = 5000,
): { socket: net.Socket; answer: Promise<RawAnswer> } {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('connect', () => socket.write(text));
  socket.on('data', (d: Buffer) => chunks.push(d));
  const answer = new Promise<RawAnswer>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${String(timeoutMs)} ms to ${JSON.stringify(text.slice(0, 60))}`));
    }, timeoutMs);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseAnswer(Buffer.concat(chunks).toString('utf8')));
    });
  });
  return { socket, answer };
}

/** Resolves with `undefined` after `ms`: the losing side of a race with an answer. */
function settleAfter(ms: number): Promise<undefined> {
  return new Promise((resolve) => {
    setTimeout(() => {
      resolve(undefined);
    }, ms);
  });
}

function parseAnswer(raw: string): RawAnswer {
  const [head = '', body = ''] = raw.split('\r\n\r\n', 2);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  return {
    status: Number(statusLine.split(' ')[1] ?? 0),
    headers,
    body: parsed,
    bytes: Buffer.byteLength(raw),
  };
}

function request(
  port: number,
  method: string,
  target: string,
  extra: string[] = [],
  body = '',
): Promise<RawAnswer> {
  const host = extra.some((l) => /^host:/i.test(l)) ? [] : ['Host: 127.0.0.1'];
  const lines = [`${method} ${target} HTTP/1.1`, ...host, 'Connection: close', ...extra];
  if (body !== '') lines.push(`Content-Length: ${String(Buffer.byteLength(body))}`);
  return openRaw(port, `${lines.join('\r\n')}\r\n\r\n${body}`).answer;
}

function assertJsonError(a: RawAnswer, status: number, code: string, what: string): ErrorBody {
  assert.equal(a.status, status, `${what}: status`);
  assert.equal(a.headers['content-type'], 'application/json', `${what}: content type`);
  const body = a.body as ErrorBody;
  assert.equal(body.error.code, code, `${what}: code`);
  assert.equal(typeof body.error.message, 'string', `${what}: message`);
  return body;
}

describe('hostile http', () => {
  let dev: Started;
  const ports: Record<string, number> = {};
  let cleanup: () => Promise<void> = () => Promise.resolve();

  const register = (name: string, host: string, target = '/v1/agent/service/register'): Promise<RawAnswer> =>
    request(
      ports['agent'] ?? 0,
      'PUT',
      target,
      [`Host: ${host}`],
      JSON.stringify({ Name: name, ID: name, Port: 8080 }),
    );

  /** The process is alive and still answers a read of a registered service. */
  async function assertStillServing(what: string): Promise<void> {
    assert.equal(dev.child.exitCode, null, `${what}: dev still runs`);
    const a = await request(ports['agent'] ?? 0, 'GET', '/v1/agent/service/keeper');
    assert.equal(a.status, 200, `${what}: the registered service is still served`);
    assert.equal((a.body as { ID: string }).ID, 'keeper');
  }

  before(async () => {
    const tmp = await tempDir();
    cleanup = tmp.cleanup;
    dev = await startMeshreg('dev', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_ADMIN_TOKEN: ADMIN,
      MESHREG_AGENT_DATA_DIR: tmp.dir,
      MESHREG_AGENT_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
      MESHREG_AGENT_MAX_BLOCKING_PER_IP: String(MAX_BLOCKING),
      MESHREG_AGENT_BODY_TIMEOUT_MS: '1000',
    });
    for (const role of ['agent', 'session', 'meta', 'data'])
      ports[role] = Number(new URL(dev.addresses[role] ?? '').port);
    const a = await register('keeper', 'localhost');
    assert.equal(a.status, 200);
  });

  after(async () => {
    assert.equal(await dev.stop(), 0, 'dev stops cleanly with exit code 0');
    await cleanup();
  });

  test('hostile http - bad request targets get a 400 JSON error naming the target on every port', async () => {
    for (const [role, port] of Object.entries(ports)) {
      for (const target of TARGETS) {
        const body = assertJsonError(
          await request(port, 'GET', target),
          400,
          'invalid_argument',
          `${role} ${target}`,
        );
        assert.equal(body.error.fields?.[0]?.path, '(target)');
        assert.ok(body.error.message.includes(JSON.stringify(target)), body.error.message);
      }
    }
    await assertStillServing('after bad targets');
  });

  test('hostile http - a bad target on a WebSocket upgrade gets a 400 and a closed socket', async () => {
    const upgrade = [
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    ];
    for (const role of ['session', 'meta', 'data']) {
      for (const target of TARGETS) {
        // The answer resolves only once the server closed the socket.
        const a = await request(ports[role] ?? 0, 'GET', target, upgrade);
        assertJsonError(a, 400, 'invalid_argument', `${role} upgrade ${target}`);
      }
    }
    await assertStillServing('after bad upgrades');
  });

  test('hostile http - malformed HTTP gets a JSON 400, huge headers a JSON 431, on every port', async () => {
    for (const [role, port] of Object.entries(ports)) {
      const bad = await openRaw(port, 'GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n').answer;
      assertJsonError(bad, 400, 'invalid_argument', `${role} bad header`);
      const huge = await openRaw(port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
        .answer;
      assertJsonError(huge, 431, 'headers_too_large', `${role} huge header`);
    }
    await assertStillServing('after malformed HTTP');
  });

  test('hostile http - percent-encoding errors name the param (agent and admin API)', async () => {
    const agent = await request(ports['agent'] ?? 0, 'GET', '/v1/agent/service/%E0%A4%A');
    const body = assertJsonError(agent, 400, 'invalid_argument', 'agent percent');
    assert.equal(body.error.fields?.[0]?.path, 'id');
    const admin = await request(ports['meta'] ?? 0, 'GET', '/admin/services/%E0%A4%A', [
      `Authorization: Bearer ${ADMIN}`,
    ]);
    assert.equal(
      assertJsonError(admin, 400, 'invalid_argument', 'admin percent').error.fields?.[0]?.path,
      'service',
    );
  });

  test('hostile http - the admin bearer scheme is case-insensitive', async () => {
    for (const scheme of ['bearer', 'BEARER', 'Bearer']) {
      const a = await request(ports['meta'] ?? 0, 'GET', '/admin/members', [
        `Authorization: ${scheme} ${ADMIN}`,
      ]);
      assert.equal(a.status, 200, scheme);
      assert.ok(Array.isArray((a.body as { members: unknown[] }).members));
    }
    const wrong = await request(ports['meta'] ?? 0, 'GET', '/admin/members', ['Authorization: bearer nope']);
    assertJsonError(wrong, 401, 'unauthorized', 'wrong token');
  });

  test('hostile http - a write with a foreign Host is refused and registers nothing', async () => {
    const evil = assertJsonError(await register('rebound', 'evil.example'), 403, 'forbidden', 'evil Host');
    assert.equal(evil.error.fields?.[0]?.path, 'Host');
    const absolute = await register('rebound', 'localhost', 'http://evil.example/v1/agent/service/register');
    assertJsonError(absolute, 403, 'forbidden', 'absolute-form authority');
    assert.equal((await request(ports['agent'] ?? 0, 'GET', '/v1/agent/service/rebound')).status, 404);
    const local = await register('rebound', `localhost:${String(ports['agent'])}`);
    assert.equal(local.status, 200);
    assert.equal((await request(ports['agent'] ?? 0, 'GET', '/v1/agent/service/rebound')).status, 200);
  });

  test('hostile http - a body that does not arrive in time gets a JSON 408', async () => {
    const head = 'PUT /v1/agent/service/register HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n';
    const started = Date.now();
    const a = await openRaw(ports['agent'] ?? 0, `${head}{"Name":`).answer;
    assertJsonError(a, 408, 'request_timeout', 'slow body');
    assert.ok(Date.now() - started < 4000, 'answered near the 1 s body timeout');
    await assertStillServing('after a slow body');
  });

  test('hostile http - blocking queries over the per-client cap get 429 while other reads work', async (t) => {
    const port = ports['agent'] ?? 0;
    const first = await request(port, 'GET', '/v1/health/service/keeper');
    const index = first.headers['x-consul-index'] ?? '';
    assert.ok(Number(index) > 0, 'a read carries an index');
    const blocking = `/v1/health/service/keeper?index=${index}&wait=30s`;
    const held = Array.from({ length: MAX_BLOCKING }, () =>
      openRaw(port, `GET ${blocking} HTTP/1.1\r\nHost: localhost\r\n\r\n`, 60_000),
    );
    t.after(() => {
      for (const h of held) h.socket.destroy();
    });
    // Each held query counts only once the agent got it: wait until one more is refused.
    const over = await waitFor('the cap to be reached', async () => {
      const a = await request(port, 'GET', blocking);
      return a.status === 429 ? a : undefined;
    });
    const body = assertJsonError(over, 429, 'rate_limited', 'over the cap');
    assert.match(body.error.message, /MESHREG_AGENT_MAX_BLOCKING_PER_IP/);
    assert.ok(body.error.message.includes(String(MAX_BLOCKING)));
    assert.equal(
      (await request(port, 'GET', '/v1/health/service/keeper')).status,
      200,
      'plain reads still work',
    );
    // An aborted query gives its slot back: a new blocking query is then held, not refused.
    held[0]?.socket.destroy();
    const again = await waitFor('a freed slot', async () => {
      const o = openRaw(port, `GET ${blocking} HTTP/1.1\r\nHost: localhost\r\n\r\n`, 60_000);
      const early = await Promise.race([o.answer, settleAfter(300)]);
      if (early === undefined) return o;
      return undefined;
    });
    t.after(() => again.socket.destroy());
  });

  test('hostile http - sockets over the connection cap are closed unanswered; open ones keep working', async (t) => {
    const port = ports['agent'] ?? 0;
    await new Promise((r) => setTimeout(r, 300));
    const open: net.Socket[] = [];
    t.after(() => {
      for (const s of open) s.destroy();
    });
    let refused: RawAnswer | undefined;
    for (let i = 0; i < MAX_CONNECTIONS + 4 && refused === undefined; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      const closed = new Promise<RawAnswer>((resolve) => {
        let bytes = 0;
        s.on('data', (d: Buffer) => (bytes += d.length));
        s.on('close', () => resolve({ status: 0, headers: {}, body: undefined, bytes }));
      });
      refused = await Promise.race([closed, settleAfter(200)]);
      if (refused === undefined) open.push(s);
    }
    assert.ok(refused !== undefined, 'a socket over the cap is closed');
    assert.equal(refused.bytes, 0, 'closed unanswered');
    assert.ok(
      open.length <= MAX_CONNECTIONS && open.length >= MAX_CONNECTIONS - 2,
      `${String(open.length)} held open`,
    );
    // A client already connected is still served.
    const answer = new Promise<string>((resolve) => {
      let text = '';
      open[0]?.on('data', (d: Buffer) => {
        text += d.toString('utf8');
        if (text.includes('\r\n\r\n')) resolve(text);
      });
    });
    open[0]?.write('GET /v1/agent/services HTTP/1.1\r\nHost: localhost\r\n\r\n');
    assert.match(await answer, /^HTTP\/1\.1 200 /);
    assert.match(dev.logs(), /http connection refused: at the connection cap/);
    for (const s of open) s.destroy();
    await waitFor(
      'a new connection after the others closed',
      async () => (await request(port, 'GET', '/v1/agent/services')).status === 200,
    );
    await assertStillServing('after the connection cap');
  });
});

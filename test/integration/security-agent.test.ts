/**
 * Attack suite, the agent's local API (real `meshreg dev` with a local token): writes without the
 * token or with a wrong one, a token in the URL, `PUT /v1/agent/leave`, and the header tricks of
 * Nacos CVE-2021-29441 (`User-Agent: Nacos-Server`), proxies (`X-Forwarded-For`, `X-Real-IP`) and
 * `Host`. Each is refused with its documented code, and the registry is listed before and after
 * to show nothing changed.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { after, before, describe, test } from 'node:test';
import { http, header } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { rawRequest, type RawAnswer } from '../support/raw-http.js';

const LOCAL_TOKEN = 'agent-sec-local-token-for-tests';

interface ErrorBody {
  error?: { code?: string; fields?: { path: string }[] };
}
const codeOf = (a: { body: unknown }): string => (a.body as ErrorBody | undefined)?.error?.code ?? '';
const fieldsOf = (a: { body: unknown }): string[] =>
  ((a.body as ErrorBody | undefined)?.error?.fields ?? []).map((f) => f.path);

/** Every write a local app can send, with a body where it needs one. */
const WRITES: readonly { method: string; path: string; body?: unknown }[] = [
  { method: 'PUT', path: '/v1/agent/service/register', body: { Name: 'intruder', Port: 1 } },
  { method: 'PUT', path: '/v1/agent/service/deregister/web-1' },
  { method: 'PUT', path: '/v1/agent/check/register', body: { Name: 'x', TTL: '10s' } },
  { method: 'PUT', path: '/v1/agent/check/deregister/web-ttl' },
  { method: 'PUT', path: '/v1/agent/check/pass/web-ttl' },
  { method: 'PUT', path: '/v1/agent/check/fail/web-ttl' },
  { method: 'PUT', path: '/v1/agent/check/update/web-ttl', body: { Status: 'critical' } },
  { method: 'PUT', path: '/v1/agent/service/maintenance/web-1?enable=true' },
  { method: 'PUT', path: '/v1/agent/leave' },
  { method: 'DELETE', path: '/v1/agent/service/web-1' },
];

describe('security - agent local API', () => {
  let dev: Started;
  let agent = '';
  const cleanups: (() => Promise<void>)[] = [];

  /** What the registry holds, as the agent's API lists it (check outputs change with time: left out). */
  const snapshot = async (): Promise<string> => {
    const services = (await http('GET', `${agent}/v1/agent/services`)).body;
    const checks = (await http('GET', `${agent}/v1/agent/checks`)).body as Record<string, { Status: string }>;
    const health = (await http('GET', `${agent}/v1/health/service/web`)).body as { Service: unknown }[];
    const catalog = (await http('GET', `${agent}/v1/catalog/services`)).body;
    const statuses = Object.fromEntries(Object.entries(checks).map(([id, c]) => [id, c.Status]));
    return JSON.stringify({ services, statuses, health: health.map((h) => h.Service), catalog });
  };

  before(async () => {
    const tmp = await tempDir();
    cleanups.push(tmp.cleanup);
    dev = await startMeshreg('dev', {
      MESHREG_AGENT_DATA_DIR: tmp.dir,
      MESHREG_AGENT_LOCAL_TOKEN: LOCAL_TOKEN,
    });
    agent = dev.addresses['agent'] ?? '';
    const r = await http(
      'PUT',
      `${agent}/v1/agent/service/register`,
      { Name: 'web', ID: 'web-1', Port: 8080, Check: { CheckID: 'web-ttl', TTL: '1h', Status: 'passing' } },
      { 'x-consul-token': LOCAL_TOKEN },
    );
    assert.equal(r.status, 200, r.text);
  });

  after(async () => {
    await dev?.stop();
    for (const c of cleanups) await c();
  });

  test('local token - every write without it is 401 naming X-Consul-Token, and nothing changes', async () => {
    const before = await snapshot();
    for (const w of WRITES) {
      const r = await http(w.method, `${agent}${w.path}`, w.body);
      assert.equal(r.status, 401, `${w.method} ${w.path}: ${r.text}`);
      assert.equal(codeOf(r), 'unauthorized');
      assert.deepEqual(fieldsOf(r), ['X-Consul-Token']);
    }
    assert.equal(await snapshot(), before);
  });

  test('local token - a wrong token is 403, in X-Consul-Token or as a bearer, and nothing changes', async () => {
    const before = await snapshot();
    for (const w of WRITES)
      for (const headers of [
        { 'x-consul-token': `${LOCAL_TOKEN}x` },
        { authorization: `Bearer ${LOCAL_TOKEN.slice(1)}` },
      ]) {
        const r = await http(w.method, `${agent}${w.path}`, w.body, headers);
        assert.equal(r.status, 403, `${w.method} ${w.path}: ${r.text}`);
        assert.equal(codeOf(r), 'forbidden');
        assert.doesNotMatch(r.text, new RegExp(LOCAL_TOKEN.slice(4)), 'the token is never echoed');
      }
    assert.equal(await snapshot(), before);
    assert.doesNotMatch(dev.logs(), new RegExp(LOCAL_TOKEN.slice(4)), 'the token is never logged');
  });

  test('local token - reads stay open and say the default policy; the bearer form writes too', async () => {
    const r = await http('GET', `${agent}/v1/agent/services`);
    assert.equal(r.status, 200);
    assert.equal(header(r, 'x-consul-default-acl-policy'), 'deny');
    const put = await http(
      'PUT',
      `${agent}/v1/agent/service/register`,
      { Name: 'bearer-svc', Port: 1 },
      { authorization: `Bearer ${LOCAL_TOKEN}` },
    );
    assert.equal(put.status, 200, put.text);
    const del = await http('PUT', `${agent}/v1/agent/service/deregister/bearer-svc`, undefined, {
      'x-consul-token': LOCAL_TOKEN,
    });
    assert.equal(del.status, 200);
    assert.equal(Object.keys((await http('GET', `${agent}/v1/agent/services`)).body as object).length, 1);
  });

  test('token in the URL - ?token= is refused with 400 naming token on reads and writes, even the right one', async () => {
    const before = await snapshot();
    for (const [method, path] of [
      ['GET', '/v1/agent/services'],
      ['GET', '/v1/health/service/web'],
      ['GET', '/v1/agent/self'],
      ['PUT', '/v1/agent/service/register'],
      ['PUT', '/v1/agent/leave'],
    ] as const) {
      const r = await http(
        method,
        `${agent}${path}?token=${LOCAL_TOKEN}`,
        method === 'PUT' ? { Name: 'q' } : undefined,
        {
          'x-consul-token': LOCAL_TOKEN,
        },
      );
      assert.equal(r.status, 400, `${method} ${path}`);
      assert.equal(codeOf(r), 'invalid_argument');
      assert.deepEqual(fieldsOf(r), ['token']);
    }
    assert.equal(await snapshot(), before);
  });

  test('header tricks - User-Agent, X-Forwarded-For, X-Real-IP and Host never stand in for the token', async () => {
    const before = await snapshot();
    const tricks: Record<string, string>[] = [
      { 'user-agent': 'Nacos-Server' },
      { 'user-agent': 'Consul' },
      { 'x-forwarded-for': '127.0.0.1' },
      { 'x-real-ip': '127.0.0.1' },
      { 'x-forwarded-host': 'localhost', forwarded: 'for=127.0.0.1;host=localhost' },
      { host: 'localhost' },
      { host: `127.0.0.1:${new URL(agent).port}`, 'x-consul-token': '' },
      { 'x-consul-token': `${LOCAL_TOKEN}, ${LOCAL_TOKEN}` },
    ];
    for (const headers of tricks) {
      const r: RawAnswer = await rawRequest(agent, 'PUT', '/v1/agent/service/register', headers, {
        Name: 'spoofed',
        Port: 1,
      });
      assert.ok(r.status === 401 || r.status === 403, `${JSON.stringify(headers)}: ${String(r.status)}`);
    }
    // Absolute-form targets name another authority: still the same token rule.
    for (const target of [
      `http://localhost:${new URL(agent).port}/v1/agent/leave`,
      `http://127.0.0.1/v1/agent/leave`,
    ]) {
      const r = await rawRequest(agent, 'PUT', target);
      assert.equal(r.status, 401, target);
    }
    assert.equal(await snapshot(), before);
  });

  test('leave - refused without the token; the agent still serves afterwards', async () => {
    for (const headers of [{}, { 'x-consul-token': 'nope' }, { 'user-agent': 'Consul' }]) {
      const r = await http('PUT', `${agent}/v1/agent/leave`, undefined, headers);
      assert.ok(r.status === 401 || r.status === 403, JSON.stringify(headers));
    }
    assert.equal((await http('GET', `${agent}/v1/agent/self`)).status, 200);
    assert.equal(dev.child.exitCode, null, 'the process did not exit');
  });
});

/** The address of a non-loopback interface of this host, if it has one. */
function externalAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces()))
    for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
  return undefined;
}

describe('security - agent leave without a local token', () => {
  test('leave - without a local token only a loopback peer may make the agent leave', async (t) => {
    const address = externalAddress();
    const tmp = await tempDir();
    t.after(tmp.cleanup);
    const dev = await startMeshreg('dev', {
      MESHREG_AGENT_DATA_DIR: tmp.dir,
      MESHREG_AGENT_HOST: address === undefined ? '127.0.0.1' : '0.0.0.0',
    });
    t.after(async () => {
      await dev.stop();
    });
    const port = new URL(dev.addresses['agent'] ?? '').port;
    const loopback = `http://127.0.0.1:${port}`;
    assert.equal(
      (await http('GET', `${loopback}/v1/agent/self`)).headers['x-consul-default-acl-policy'],
      'allow',
    );
    if (address === undefined) {
      t.diagnostic(
        'this machine has no non-loopback IPv4 address: the remote-peer leave step cannot run here',
      );
    } else {
      // From a non-loopback peer, with a spoofed loopback Host and forwarding headers: still refused.
      const r = await rawRequest(`http://${address}:${port}`, 'PUT', '/v1/agent/leave', {
        host: 'localhost',
        'x-forwarded-for': '127.0.0.1',
        'x-real-ip': '127.0.0.1',
      });
      assert.equal(r.status, 403, r.text);
      assert.deepEqual(fieldsOf(r), ['(peer)']);
      assert.equal((await http('GET', `${loopback}/v1/agent/self`)).status, 200, 'still serving');
    }
    const left = await http('PUT', `${loopback}/v1/agent/leave`);
    assert.equal(left.status, 200);
    assert.equal(await dev.exited, 0);
  });
});

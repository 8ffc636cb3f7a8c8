/**
 * Scoped tokens with real processes: a `meshreg server` whose agent tokens come from a token policy,
 * agents that present them, and the admin API. A token bound to a node cannot connect as another;
 * a publish outside the token's prefixes changes nothing a watcher sees; agent and read-only tokens
 * stay in their lane on the admin API; a token never travels in a URL; the policy is reloaded on
 * SIGHUP and on change; nothing starts without a token; `meshreg dev` hands its tokens over in files.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { admin, httpBase } from '../support/admin.js';
import { http, type JsonResponse } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const secret = (): string => randomBytes(24).toString('base64url');
const S = { a: secret(), b: secret(), c: secret(), ops: secret(), viewer: secret(), cluster: secret() };
/** No shared token leaks in from the environment running the tests. */
const NO_SHARED = { MESHREG_TOKEN: '', MESHREG_TOKEN_FILE: '', MESHREG_ADMIN_TOKEN: '' };

interface PolicyEntry {
  name: string;
  kind: string;
  secret: string;
  node?: string;
  services?: Record<string, string[]>;
}

const BASE_POLICY: PolicyEntry[] = [
  { name: 'node-a', kind: 'agent', secret: S.a, node: 'node-a', services: { write: ['web-'], read: [''] } },
  {
    name: 'node-b',
    kind: 'agent',
    secret: S.b,
    node: 'node-b',
    services: { write: ['api-'], read: ['web-', 'db-'], deny: ['db-secret'] },
  },
  { name: 'ops', kind: 'admin', secret: S.ops },
  { name: 'viewer', kind: 'admin-read', secret: S.viewer },
];
const WITH_C: PolicyEntry[] = [
  ...BASE_POLICY,
  { name: 'node-c', kind: 'agent', secret: S.c, node: 'node-c', services: { write: ['web-'] } },
];

async function writePolicy(file: string, tokens: PolicyEntry[]): Promise<void> {
  await writeFile(`${file}.tmp`, JSON.stringify({ tokens }), { mode: 0o600 });
  // Replaced by rename, as editors and secret volumes do.
  await rename(`${file}.tmp`, file);
}

/** A hello straight on the agent link: resolves with the close code and reason, or 'welcome'. */
function hello(url: string, token: string, nodeName: string): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('no answer to the hello within 5 s'));
    }, 5000);
    ws.on('open', () => {
      ws.send(
        JSON.stringify({ type: 'hello', protocolVersion: 1, nodeId: `id-${nodeName}`, nodeName, token }),
      );
    });
    ws.on('message', (data: Buffer) => {
      if ((JSON.parse(data.toString('utf8')) as { type: string }).type === 'welcome') {
        clearTimeout(timer);
        ws.close();
        resolve({ code: 0, reason: 'welcome' });
      }
    });
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString('utf8') });
    });
    ws.on('error', () => undefined);
  });
}

async function startAgent(session: string, token: string, node: string, dir: string): Promise<Started> {
  const tokenFile = path.join(dir, `${node}.token`);
  await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
  return startMeshreg('agent', {
    ...NO_SHARED,
    MESHREG_TOKEN_FILE: tokenFile,
    MESHREG_NODE_NAME: node,
    MESHREG_AGENT_UPSTREAM: session,
    MESHREG_AGENT_DATA_DIR: path.join(dir, node),
  });
}

function connected(agent: Started): Promise<boolean> {
  return waitFor(`agent ${agent.child.pid ?? ''} connected`, async () => {
    const h = await http('GET', `${agent.addresses['agent'] ?? ''}/v1/meshreg/health`);
    return (h.body as { status: string }).status === 'ok';
  });
}

function register(agent: Started, name: string): Promise<JsonResponse> {
  return http('PUT', `${agent.addresses['agent'] ?? ''}/v1/agent/service/register`, {
    ID: `${name}-1`,
    Name: name,
    Port: 8080,
  });
}

function errorMessage(r: JsonResponse): string {
  return (r.body as { error?: { message?: string } } | undefined)?.error?.message ?? r.text;
}

/** Closes of the upstream link with `code`, as the agent logged them. */
function closes(agent: Started, code: number): number {
  return (
    agent
      .logs()
      .split('\n')
      // A refusal that retrying cannot cure (4001) is logged as refused, once per reason.
      .filter((l) => /upstream link (closed|refused)/.test(l) && l.includes(`"code":${code}`)).length
  );
}

async function startServer(policy: string, debounceMs: number): Promise<Started> {
  return startMeshreg('server', {
    ...NO_SHARED,
    MESHREG_TOKEN_POLICY_FILE: policy,
    MESHREG_CLUSTER_TOKEN: S.cluster,
    MESHREG_TOKEN_RELOAD_DEBOUNCE_MS: String(debounceMs),
  });
}

describe('scoped tokens', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let policy: string;
  let server: Started;
  let session: string;
  let meta: string;
  let agentA: Started;
  let agentB: Started;

  before(async () => {
    ({ dir, cleanup } = await tempDir('meshreg-tokens-'));
    policy = path.join(dir, 'policy.json');
    await writePolicy(policy, BASE_POLICY);
    server = await startServer(policy, 50);
    session = server.addresses['session'] ?? '';
    meta = httpBase(server.addresses['meta'] ?? '');
    agentA = await startAgent(session, S.a, 'node-a', dir);
    agentB = await startAgent(session, S.b, 'node-b', dir);
    await connected(agentA);
    await connected(agentB);
  });

  after(async () => {
    await agentA?.stop();
    await agentB?.stop();
    await server?.stop();
    await cleanup?.();
  });

  test('tokens - a node-bound token cannot connect as another node (forbidden, with the reason)', async () => {
    const r = await hello(session, S.b, 'node-a');
    assert.equal(r.code, 4003);
    assert.match(r.reason, /token "node-b" may not connect as node "node-a"/);
    assert.equal((await hello(session, secret(), 'node-a')).code, 4001, 'an unknown token is unauthorized');
    assert.equal((await hello(session, S.ops, 'node-a')).code, 4001, 'an admin token is no agent token');
    assert.equal((await hello(session, S.cluster, 'node-a')).code, 4001, 'nor is the cluster token');
    assert.ok(!server.logs().includes(S.b), 'the secret is never logged');
  });

  test('tokens - a publish outside the write prefixes is refused and a watcher sees nothing of it', async () => {
    const b = agentB.addresses['agent'] ?? '';
    assert.equal((await http('GET', `${b}/v1/health/service/db-main`)).status, 200, 'node-b watches db-*');
    assert.equal((await register(agentA, 'db-main')).status, 200, 'the agent accepts it locally');
    assert.equal((await register(agentA, 'web-shop')).status, 200);
    await waitFor('web-shop seen at node-b', async () => {
      const r = await http('GET', `${b}/v1/health/service/web-shop`);
      return (r.body as unknown[]).length === 1;
    });
    // db-main was published before web-shop on the same connection: had it been accepted, it would be here.
    assert.deepEqual((await http('GET', `${b}/v1/health/service/db-main`)).body, []);
    const status = await waitFor('the refusal in the sync status', async () => {
      const s = (await http('GET', `${agentA.addresses['agent'] ?? ''}/v1/meshreg/sync-status`)).body as {
        services: { Service: string; InSync: boolean; Refused?: { code: string; message: string } }[];
        counters: { refusals: number };
      };
      return s.services.find((x) => x.Service === 'db-main')?.Refused !== undefined ? s : undefined;
    });
    const refused = status.services.find((x) => x.Service === 'db-main');
    assert.equal(refused?.Refused?.code, 'forbidden');
    assert.match(refused?.Refused?.message ?? '', /token "node-a" may not publish "db-main"/);
    assert.equal(status.services.find((x) => x.Service === 'web-shop')?.InSync, true);
    // Not retried hot: a second later the agent has not sent it again.
    await new Promise((r) => setTimeout(r, 1000));
    const later = (await http('GET', `${agentA.addresses['agent'] ?? ''}/v1/meshreg/sync-status`)).body as {
      counters: { refusals: number };
    };
    assert.ok(later.counters.refusals <= 2, `refusals ${later.counters.refusals}`);
  });

  test('tokens - a watch outside the read prefixes is refused (403) and a deny prefix wins', async () => {
    const b = agentB.addresses['agent'] ?? '';
    const r = await http('GET', `${b}/v1/health/service/cache-main`);
    assert.equal(r.status, 403);
    assert.match(errorMessage(r), /token "node-b" may not watch "cache-main"/);
    assert.equal((await http('GET', `${b}/v1/health/service/db-secret-store`)).status, 403);
  });

  test('tokens - the admin API: agent token 401, read-only token reads but cannot write, never in a URL', async () => {
    assert.equal((await admin('GET', `${meta}/admin/members`, S.a)).status, 401);
    assert.equal((await admin('GET', `${meta}/admin/members`, S.viewer)).status, 200);
    const write = await admin('POST', `${meta}/admin/switches/push`, S.viewer, { stopped: true });
    assert.equal(write.status, 403);
    assert.match(errorMessage(write), /"viewer" is read-only/);
    assert.equal(
      ((await admin('GET', `${meta}/admin/switches`, S.ops)).body as { pushStopped: boolean }).pushStopped,
      false,
    );
    const inUrl = await http('GET', `${meta}/admin/members?token=${S.viewer}`);
    assert.equal(inUrl.status, 400);
    const body = inUrl.body as { error: { code: string; fields: { path: string }[] } };
    assert.equal(body.error.code, 'invalid_argument');
    assert.deepEqual(
      body.error.fields.map((f) => f.path),
      ['token'],
    );
    assert.equal((await http('GET', `${meta}/admin/members?access_token=x`, undefined, {})).status, 400);
  });

  test('tokens - a policy change is reloaded without restart; a revoked token is closed and refused', async () => {
    assert.equal((await hello(session, S.c, 'node-c')).code, 4001, 'node-c is not known yet');
    await writePolicy(policy, WITH_C);
    await waitFor(
      'node-c admitted after the file changed',
      async () => (await hello(session, S.c, 'node-c')).code === 0,
    );
    const agentC = await startAgent(session, S.c, 'node-c', dir);
    try {
      await connected(agentC);
      await writePolicy(policy, BASE_POLICY);
      await waitFor('node-c closed as revoked', () => closes(agentC, 4001) >= 1);
      assert.match(agentC.logs(), /token revoked/);
      // Refused again on its next connect (backoff max is 500 ms in tests), never readmitted.
      await waitFor('node-c refused on reconnect', () => closes(agentC, 4001) >= 2, 5000);
      const health = await http('GET', `${agentC.addresses['agent'] ?? ''}/v1/meshreg/health`);
      assert.equal((health.body as { status: string }).status, 'degraded');
      assert.match(server.logs(), /"msg":"tokens reloaded"[^\n]*"why":"file changed"/);
    } finally {
      await agentC.stop();
    }
    // A bad policy keeps the one in force and logs the error with its path.
    await writeFile(policy, JSON.stringify({ tokens: [{ name: 'x', kind: 'agent', secret: 'short' }] }));
    await waitFor('the failed reload logged', () =>
      /token reload failed.*tokens\[0\]\.secret/.test(server.logs()),
    );
    assert.equal((await hello(session, S.a, 'node-a')).code, 0, 'the old tokens stay in force');
    await writePolicy(policy, BASE_POLICY);
  });
});

describe('tokens reloaded on SIGHUP', () => {
  test('tokens - SIGHUP reloads the policy (the file watch waits a minute here)', async (t) => {
    const { dir, cleanup } = await tempDir('meshreg-tokens-hup-');
    t.after(cleanup);
    const policy = path.join(dir, 'policy.json');
    await writePolicy(policy, BASE_POLICY);
    const server = await startServer(policy, 60_000);
    t.after(() => server.stop());
    const session = server.addresses['session'] ?? '';
    await writePolicy(policy, WITH_C);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await hello(session, S.c, 'node-c')).code, 4001, 'not yet: no reload without the signal');
    server.child.kill('SIGHUP');
    await waitFor(
      'node-c admitted after SIGHUP',
      async () => (await hello(session, S.c, 'node-c')).code === 0,
    );
    assert.match(server.logs(), /"msg":"tokens reloaded"[^\n]*"why":"SIGHUP"/);
    assert.equal(server.child.exitCode, null, 'SIGHUP does not stop the server');
  });
});

describe('no default secret', () => {
  test('tokens - a server or an agent without any token refuses to start', async () => {
    await assert.rejects(
      startMeshreg('server', { ...NO_SHARED, MESHREG_TOKEN_POLICY_FILE: '' }),
      /exited \(1\) before ready:[\s\S]*no agent token: set MESHREG_TOKEN, MESHREG_TOKEN_FILE or MESHREG_TOKEN_POLICY_FILE/,
    );
    await assert.rejects(
      startMeshreg('agent', { ...NO_SHARED }),
      /exited \(1\) before ready:[\s\S]*MESHREG_TOKEN \(or MESHREG_TOKEN_FILE\) is required/,
    );
  });

  test('tokens - a bad policy refuses the start, naming every bad field', async (t) => {
    const { dir, cleanup } = await tempDir('meshreg-tokens-bad-');
    t.after(cleanup);
    const policy = path.join(dir, 'policy.json');
    await writeFile(
      policy,
      JSON.stringify({
        tokens: [
          { name: 'a', kind: 'agent' },
          { kind: 'root', secret: S.a },
        ],
      }),
    );
    await assert.rejects(
      startServer(policy, 50),
      /exited \(1\) before ready:[\s\S]*tokens\[0\]: needs secret or secretFile[\s\S]*tokens\[1\]\.name: is required[\s\S]*tokens\[1\]\.kind/,
    );
  });

  test('tokens - meshreg dev writes its tokens to private files and a second agent joins with one', async (t) => {
    const { dir, cleanup } = await tempDir('meshreg-tokens-dev-');
    t.after(cleanup);
    const dev = await startMeshreg('dev', { ...NO_SHARED, MESHREG_AGENT_DATA_DIR: path.join(dir, 'dev') });
    t.after(() => dev.stop());
    const m = /"msg":"dev tokens written".*"agentTokenFile":"([^"]+)","adminTokenFile":"([^"]+)"/.exec(
      dev.logs(),
    );
    assert.ok(m?.[1] !== undefined && m[2] !== undefined, 'the log says where the tokens are');
    const [agentFile, adminFile] = [m[1], m[2]];
    assert.equal((await stat(agentFile)).mode & 0o777, 0o600);
    assert.equal((await stat(adminFile)).mode & 0o777, 0o600);
    assert.equal((await stat(path.dirname(agentFile))).mode & 0o777, 0o700);
    const agentSecret = (await readFile(agentFile, 'utf8')).trim();
    assert.ok(!dev.logs().includes(agentSecret), 'the secret is not logged');
    const second = await startMeshreg('agent', {
      ...NO_SHARED,
      MESHREG_TOKEN_FILE: agentFile,
      MESHREG_NODE_NAME: 'second',
      MESHREG_AGENT_UPSTREAM: dev.addresses['session'] ?? '',
      MESHREG_AGENT_DATA_DIR: path.join(dir, 'second'),
    });
    t.after(() => second.stop());
    await connected(second);
    assert.equal((await register(second, 'web-joined')).status, 200);
    await waitFor('the second agent’s service seen by the dev agent', async () => {
      const r = await http('GET', `${dev.addresses['agent'] ?? ''}/v1/health/service/web-joined`);
      return (r.body as unknown[]).length === 1;
    });
    const adminSecret = (await readFile(adminFile, 'utf8')).trim();
    const meta = httpBase(dev.addresses['meta'] ?? '');
    assert.equal((await admin('GET', `${meta}/admin/members`, adminSecret)).status, 200);
    await second.stop();
    await dev.stop();
    await assert.rejects(stat(path.dirname(agentFile)), /ENOENT/, 'the token files go with the process');
  });
});

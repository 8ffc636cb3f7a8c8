/**
 * Attack suite, paths (the lesson of Nacos #4701, whose auth fix was bypassed through URL path
 * tricks, and of CVE-2020-7955, where a few Consul routes skipped the ACL check). Against a real
 * `meshreg server` with an admin token and a `meshreg agent` with a local token: every path trick
 * on every role's admin API and on the agent's API is either refused (4xx JSON) or meets exactly
 * the authorization of its canonical path — never served without the token. And the admin route table is enumerated: every
 * route has an access level, and a request without a token is refused on all of them except
 * `loopback-read` routes from loopback.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AdminRoute } from '../../control-plane/admin/ops-http.js';
import { dataAdminRoutes } from '../../control-plane/data/data-ops.js';
import { protectionRoutes } from '../../control-plane/link/protection-ops.js';
import { metaAdminRoutes } from '../../control-plane/meta/meta-ops.js';
import { sessionAdminRoutes } from '../../control-plane/session/session-ops.js';
import { httpBase } from '../support/admin.js';
import { http } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { rawRequest, type RawAnswer } from '../support/raw-http.js';

const ADMIN_TOKEN = 'paths-admin-token-for-tests';
const LOCAL_TOKEN = 'paths-local-token-for-tests';
const CLUSTER_TOKEN = 'paths-cluster-token-for-tests';
const BEARER = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** Variants of `canonical` (`/a/b`) that a lenient router might map to it. */
function tricks(canonical: string, authority: string): string[] {
  const parts = canonical.split('/').filter((p) => p !== '');
  const [first = '', ...rest] = parts;
  const tail = rest.join('/');
  return [
    `/${first}/../${first}/${tail}`,
    `/${first}/./${tail}`,
    `//${first}/${tail}`,
    `///${first}/${tail}`,
    `/%2e%2e/${first}/${tail}`,
    `/%2E/${first}/${tail}`,
    `/${first}/%2e%2e/${first}/${tail}`,
    `/${first};x/${tail}`,
    `${canonical};x`,
    `/${first.toUpperCase()}/${tail}`,
    canonical.toUpperCase(),
    `${canonical}.`,
    `${canonical}/`,
    `${canonical}//`,
    `/${first}//${tail}`,
    `/${first}%2F${tail}`,
    `/${first}%2f${tail}`,
    `/%${first.charCodeAt(0).toString(16)}${first.slice(1)}/${tail}`,
    `/${first}\\${tail.replaceAll('/', '\\')}`,
    `\\${first}\\${tail.replaceAll('/', '\\')}`,
    `${canonical}%00`,
    `${canonical}%20`,
    `${canonical}?x=1#frag`,
    `/metrics/../${first}/${tail}`,
    `/health/../${first}/${tail}`,
    `http://${authority}${canonical}`,
    `http://evil.example${canonical}`,
    `HTTP://${authority}/${first}/./${tail}`,
    `*`,
    `${authority}${canonical}`,
    `/${'a'.repeat(20_000)}/../..${canonical}`,
    `/${'x/../'.repeat(2000)}${first}/${tail}`,
  ];
}

const isRefusal = (r: RawAnswer): boolean =>
  r.status >= 400 &&
  r.status < 500 &&
  typeof (r.body as { error?: { code?: string } } | undefined)?.error?.code === 'string';

/** True when `r` is a refusal or has the status and error code of `canonical`. */
function sameOrRefused(r: RawAnswer, canonical: RawAnswer): boolean {
  if (isRefusal(r)) return true;
  const code = (a: RawAnswer): unknown => (a.body as { error?: { code?: string } } | undefined)?.error?.code;
  return r.status === canonical.status && code(r) === code(canonical);
}

describe('security - paths', () => {
  let server: Started;
  let agentProcess: Started;
  let agent = '';
  const roles: Record<string, string> = {};
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    server = await startMeshreg('server', {
      MESHREG_TOKEN: CLUSTER_TOKEN,
      MESHREG_ADMIN_TOKEN: ADMIN_TOKEN,
    });
    const tmp = await tempDir();
    cleanups.push(tmp.cleanup);
    agentProcess = await startMeshreg('agent', {
      MESHREG_TOKEN: CLUSTER_TOKEN,
      MESHREG_AGENT_UPSTREAM: server.addresses['session'] ?? '',
      MESHREG_AGENT_DATA_DIR: tmp.dir,
      MESHREG_AGENT_LOCAL_TOKEN: LOCAL_TOKEN,
    });
    agent = agentProcess.addresses['agent'] ?? '';
    for (const role of ['meta', 'data', 'session']) roles[role] = httpBase(server.addresses[role] ?? '');
    const r = await http(
      'PUT',
      `${agent}/v1/agent/service/register`,
      { Name: 'web', Port: 1 },
      {
        'x-consul-token': LOCAL_TOKEN,
      },
    );
    assert.equal(r.status, 200);
  });

  after(async () => {
    await agentProcess?.stop();
    await server?.stop();
    for (const c of cleanups) await c();
  });

  const canonicals: Record<string, string[]> = {
    meta: ['/admin/members', '/admin/slots', '/admin/protection'],
    data: ['/admin/status', '/admin/protection'],
    session: ['/admin/connections', '/admin/switches'],
  };

  test("admin paths - every trick on every role is refused or meets its canonical path's authorization", async () => {
    for (const [role, paths] of Object.entries(canonicals)) {
      const base = roles[role] ?? '';
      const authority = new URL(base).host;
      for (const canonical of paths) {
        const anon = await rawRequest(base, 'GET', canonical);
        const authed = await rawRequest(base, 'GET', canonical, BEARER);
        assert.equal(authed.status, 200, `${role} ${canonical} with the token`);
        for (const target of tricks(canonical, authority)) {
          const what = `${role} GET ${target.slice(0, 80)}`;
          const r = await rawRequest(base, 'GET', target);
          assert.ok(
            sameOrRefused(r, anon),
            `${what} without a token: ${String(r.status)} ${r.text.slice(0, 200)}`,
          );
          if (anon.status === 401) assert.ok(r.status >= 400, `${what} served without the token`);
          const wrong = await rawRequest(base, 'GET', target, { authorization: 'Bearer wrong' });
          assert.ok(isRefusal(wrong), `${what} with a wrong token: ${String(wrong.status)}`);
          const ok = await rawRequest(base, 'GET', target, BEARER);
          assert.ok(sameOrRefused(ok, authed), `${what} with the token: ${String(ok.status)}`);
        }
      }
    }
  });

  test('admin paths - write tricks without a token change nothing', async () => {
    const base = roles['meta'] ?? '';
    const before = await rawRequest(base, 'GET', '/admin/switches', BEARER);
    for (const target of tricks('/admin/switches/push', new URL(base).host)) {
      const r = await rawRequest(
        base,
        'POST',
        target,
        { 'user-agent': 'Nacos-Server' },
        { push: false, reason: 'x' },
      );
      assert.ok(isRefusal(r), `POST ${target.slice(0, 80)}: ${String(r.status)}`);
    }
    const afterwards = await rawRequest(base, 'GET', '/admin/switches', BEARER);
    assert.deepEqual(afterwards.body, before.body);
  });

  test('agent paths - tricks on write routes are refused without the local token and nothing changes', async () => {
    const authority = new URL(agent).host;
    const services = async (): Promise<unknown> => (await http('GET', `${agent}/v1/agent/services`)).body;
    const before = await services();
    for (const canonical of [
      '/v1/agent/leave',
      '/v1/agent/service/deregister/web',
      '/v1/agent/service/register',
    ]) {
      for (const target of tricks(canonical, authority)) {
        const r = await rawRequest(
          agent,
          'PUT',
          target,
          { 'x-forwarded-for': '127.0.0.1' },
          { Name: 'trick', Port: 2 },
        );
        assert.ok(isRefusal(r), `PUT ${target.slice(0, 80)}: ${String(r.status)} ${r.text.slice(0, 200)}`);
      }
    }
    assert.deepEqual(await services(), before);
    assert.equal(agentProcess.child.exitCode, null, 'the agent did not leave');
  });

  test('admin route table - every route has an access level; without a token only loopback-read answers', async (t) => {
    const stub = {} as never;
    const tables: Record<string, AdminRoute[]> = {
      meta: [...metaAdminRoutes(stub), ...protectionRoutes(stub)],
      data: [...dataAdminRoutes(stub, () => ({})), ...protectionRoutes(stub)],
      session: [...sessionAdminRoutes(stub), ...protectionRoutes(stub)],
    };
    const defaulted: string[] = [];
    for (const [role, routes] of Object.entries(tables)) {
      const base = roles[role] ?? '';
      assert.ok(routes.length > 0);
      for (const r of routes) {
        if (r.access === undefined) defaulted.push(`${role} ${r.method} ${r.path}`);
        const access = r.access ?? (r.method === 'GET' ? 'read' : 'write');
        assert.ok(['loopback-read', 'read', 'write'].includes(access));
        // A route that changes anything needs a write token; loopback-read is for reads only.
        if (r.method !== 'GET') assert.equal(access, 'write', `${r.method} ${r.path}`);
        const path = r.path.replace(/:[a-z]+/gi, 'web');
        const body = r.method === 'GET' ? undefined : {};
        const anon = await rawRequest(base, r.method, path, {}, body);
        if (access === 'loopback-read')
          assert.ok(
            anon.status !== 401 && anon.status !== 403,
            `${role} ${r.method} ${path}: ${String(anon.status)}`,
          );
        else
          assert.equal(
            anon.status,
            401,
            `${role} ${r.method} ${path} without a token: ${String(anon.status)}`,
          );
        const wrong = await rawRequest(base, r.method, path, { authorization: 'Bearer nope' }, body);
        assert.equal(wrong.status, 401, `${role} ${r.method} ${path} with a wrong token`);
        const spoofed = await rawRequest(
          base,
          r.method,
          path,
          { 'user-agent': 'Nacos-Server', 'x-forwarded-for': '127.0.0.1' },
          body,
        );
        assert.equal(
          spoofed.status,
          anon.status,
          `${role} ${r.method} ${path}: headers changed the decision`,
        );
      }
    }
    if (defaulted.length > 0)
      t.diagnostic(`routes on the default access (GET read, others write): ${defaulted.join('; ')}`);
  });
});

/**
 * The token policy: its decoder reports every error with its path, service prefixes resolve with the
 * most specific one winning, no policy grants more than its prefixes, the store looks secrets up (and
 * keeps the old tokens when a reload fails), and a session's grants re-check live connections.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { AgentGrants, splitPublish } from '../../control-plane/auth/agent-grants.js';
import {
  decodeTokenPolicy,
  mayRead,
  mayWrite,
  nodeAllowed,
  serviceAccess,
  type ServiceRules,
  type TokenGrant,
} from '../../control-plane/auth/token-policy.js';
import {
  TokenStore,
  loadTokens,
  sharedAgentToken,
  type TokenSources,
} from '../../control-plane/auth/token-store.js';
import { readTokenSettings } from '../../control-plane/auth/token-config.js';
import { createLogger } from '../../proto/runtime/log.js';
import { makeInstance } from '../support/fixtures.js';
import { anyJson } from '../support/arbitraries.js';

const SECRET_A = 'a'.repeat(16) + '-unit-agent';
const SECRET_B = 'b'.repeat(16) + '-unit-admin';
const NONE: TokenSources = { policyFile: '', token: '', tokenFile: '', adminToken: '', adminTokenFile: '' };

function rules(write: string[], read: string[] = [], deny: string[] = []): ServiceRules {
  return { write, read, deny };
}

function agent(services: ServiceRules, node: TokenGrant['node'] = { kind: 'any' }): TokenGrant {
  return { name: 't', kind: 'agent', node, services };
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meshreg-tokens-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function quietLogger(lines: string[] = []): ReturnType<typeof createLogger> {
  return createLogger('debug', {}, (line) => lines.push(line));
}

test('token policy - decoder reports every error with its path', () => {
  const d = decodeTokenPolicy({
    tokens: [
      { name: 'ok', kind: 'agent', secret: SECRET_A, node: 'a', services: { write: ['web-'] } },
      { name: 'bad name!', kind: 'root', secret: 'short' },
      { name: 'both', kind: 'agent', secret: SECRET_B, secretFile: 'f' },
      { name: 'admin-with-node', kind: 'admin', secret: `${SECRET_B}x`, node: 'a' },
      { name: 'x', kind: 'agent', secretFile: 'f', node: 'a', nodePrefix: 'b', extra: 1 },
      { name: 'dup', kind: 'agent', secretFile: 'f', services: { write: ['a'], read: ['a'], all: [] } },
    ],
    other: true,
  });
  assert.equal(d.ok, false);
  const paths = d.ok ? [] : d.errors.map((e) => e.path);
  for (const p of [
    'other',
    'tokens[1].name',
    'tokens[1].kind',
    'tokens[1].secret',
    'tokens[2]',
    'tokens[3].node',
    'tokens[4].extra',
    'tokens[4].nodePrefix',
    'tokens[5].services.all',
    'tokens[5].services.read[0]',
  ])
    assert.ok(paths.includes(p), `an error at ${p} in ${JSON.stringify(paths)}`);
  assert.ok(!paths.some((p) => p.startsWith('tokens[0]')), 'the valid entry has no error');
});

test('token policy - repeated names and secrets are errors that never echo the secret', () => {
  const d = decodeTokenPolicy({
    tokens: [
      { name: 'a', kind: 'agent', secret: SECRET_A },
      { name: 'a', kind: 'agent', secret: SECRET_A },
    ],
  });
  assert.equal(d.ok, false);
  if (d.ok) return;
  assert.deepEqual(
    d.errors.map((e) => e.path),
    ['tokens[1].name', 'tokens[1].secret'],
  );
  assert.ok(!JSON.stringify(d.errors).includes(SECRET_A));
});

test('token policy - defaults: no services reads everything and writes nothing', () => {
  const d = decodeTokenPolicy({ tokens: [{ name: 'r', kind: 'agent', secretFile: 'x' }] });
  assert.ok(d.ok);
  const grant = d.value.tokens[0]?.grant;
  assert.ok(grant !== undefined);
  assert.equal(mayRead(grant, 'anything'), true);
  assert.equal(mayWrite(grant, 'anything'), false);
  assert.deepEqual(grant.node, { kind: 'any' });
});

test('token policy - the most specific prefix wins', () => {
  const r = rules(['web-', ''], ['db-'], ['web-internal']);
  assert.equal(serviceAccess(r, 'web-shop'), 'write');
  assert.equal(serviceAccess(r, 'web-internal-api'), 'deny');
  assert.equal(serviceAccess(r, 'db-main'), 'read');
  assert.equal(serviceAccess(r, 'cache'), 'write');
  assert.equal(serviceAccess(rules(['web-']), 'api'), 'deny');
  assert.equal(serviceAccess(rules([], ['']), 'api'), 'read');
  assert.equal(mayRead(agent(rules(['web-'])), 'web-a'), true, 'write includes read');
  const admin: TokenGrant = { ...agent(rules([''])), kind: 'admin' };
  assert.equal(mayWrite(admin, 'web'), false, 'only agent tokens publish');
});

test('token policy - node binding: exact, prefix or any', () => {
  assert.equal(nodeAllowed(agent(rules([]), { kind: 'exact', name: 'a' }), 'a'), true);
  assert.equal(nodeAllowed(agent(rules([]), { kind: 'exact', name: 'a' }), 'ab'), false);
  assert.equal(nodeAllowed(agent(rules([]), { kind: 'prefix', prefix: 'batch-' }), 'batch-7'), true);
  assert.equal(nodeAllowed(agent(rules([]), { kind: 'prefix', prefix: 'batch-' }), 'web-1'), false);
  assert.equal(nodeAllowed(agent(rules([])), 'anything'), true);
});

const prefix = fc.stringMatching(/^[a-c-]{0,4}$/);
const name = fc.stringMatching(/^[a-c-]{0,6}$/);
const serviceRules = fc
  .record({ write: fc.array(prefix, { maxLength: 4 }), read: fc.array(prefix), deny: fc.array(prefix) })
  .map((r) => {
    // A prefix sits at one level only (the decoder refuses more).
    const read = r.read.filter((p) => !r.write.includes(p));
    return rules(
      r.write,
      read,
      r.deny.filter((p) => !r.write.includes(p) && !read.includes(p)),
    );
  });

test('token policy - a token never grants more than its prefixes', () => {
  fc.assert(
    fc.property(serviceRules, name, (r, service) => {
      const g = agent(r);
      const longest = (list: readonly string[]): number =>
        Math.max(-1, ...list.filter((p) => service.startsWith(p)).map((p) => p.length));
      if (mayWrite(g, service)) {
        assert.ok(longest(r.write) >= 0, 'a write prefix matches');
        assert.ok(longest(r.write) > Math.max(longest(r.read), longest(r.deny)), 'and is the most specific');
      }
      if (mayRead(g, service)) assert.ok(Math.max(longest(r.write), longest(r.read)) > longest(r.deny));
      else assert.equal(mayWrite(g, service), false);
    }),
    { numRuns: 500 },
  );
});

test('token policy - arbitrary policies and names never make the decoder or the checks throw', () => {
  const entry = fc.record(
    {
      name: fc.oneof(name, anyJson),
      kind: fc.oneof(fc.constantFrom('agent', 'admin', 'admin-read'), anyJson),
      secret: fc.oneof(fc.string({ minLength: 16 }), anyJson),
      secretFile: anyJson,
      node: fc.oneof(name, anyJson),
      nodePrefix: fc.oneof(name, anyJson),
      services: fc.oneof(
        fc.record({
          write: fc.array(prefix),
          read: fc.array(prefix),
          deny: fc.array(fc.oneof(prefix, anyJson)),
        }),
        anyJson,
      ),
    },
    { requiredKeys: [] },
  );
  fc.assert(
    fc.property(
      fc.oneof(fc.record({ tokens: fc.array(entry, { maxLength: 5 }) }), anyJson),
      name,
      (raw, n) => {
        const d = decodeTokenPolicy(raw);
        if (!d.ok) {
          assert.ok(d.errors.length > 0);
          for (const e of d.errors) assert.ok(e.path !== '' && e.message !== '');
          return;
        }
        for (const t of d.value.tokens) {
          nodeAllowed(t.grant, n);
          mayWrite(t.grant, n);
          mayRead(t.grant, n);
        }
      },
    ),
    { numRuns: 500 },
  );
});

test('token store - looks up agent and admin tokens by secret; an agent token is no admin token', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'ops'), `  ${SECRET_B}\n`, { mode: 0o600 });
  const policy = path.join(dir, 'policy.json');
  await writeFile(
    policy,
    JSON.stringify({
      tokens: [
        { name: 'node-a', kind: 'agent', secret: SECRET_A, node: 'a', services: { write: ['web-'] } },
        { name: 'ops', kind: 'admin-read', secretFile: 'ops' },
      ],
    }),
  );
  const opened = TokenStore.open({ ...NONE, policyFile: policy }, { logger: quietLogger(), debounceMs: 10 });
  assert.ok(opened.ok);
  const store = opened.value;
  assert.equal(store.authenticate(SECRET_A)?.name, 'node-a');
  assert.equal(store.authenticate(SECRET_B), undefined, 'an admin token is not an agent token');
  assert.equal(store.authenticate(''), undefined);
  assert.equal(store.authenticate(`${SECRET_A}x`), undefined);
  const admin = store.adminAuth();
  assert.equal(admin.enabled(), true);
  assert.deepEqual(admin.authenticate(SECRET_B), { name: 'ops', access: 'read' }, 'secret file trimmed');
  assert.equal(admin.authenticate(SECRET_A), undefined, 'an agent token is unknown to the admin API');
});

test('token store - a bad reload keeps the tokens in force and logs the errors with paths', async (t) => {
  const dir = await tempDir(t);
  const policy = path.join(dir, 'policy.json');
  await writeFile(policy, JSON.stringify({ tokens: [{ name: 'a', kind: 'agent', secret: SECRET_A }] }));
  const lines: string[] = [];
  const opened = TokenStore.open(
    { ...NONE, policyFile: policy },
    { logger: quietLogger(lines), debounceMs: 10 },
  );
  assert.ok(opened.ok);
  const store = opened.value;
  let reloads = 0;
  store.onReload(() => reloads++);
  await writeFile(policy, JSON.stringify({ tokens: [{ name: 'a', kind: 'agent', secret: 'short' }] }));
  assert.equal(store.reload('test'), false);
  assert.equal(store.authenticate(SECRET_A)?.name, 'a', 'the old token stays');
  assert.equal(reloads, 0);
  const failed = lines.find((l) => l.includes('token reload failed'));
  assert.ok(failed?.includes('tokens[0].secret'), failed);
  assert.ok(!lines.join('\n').includes(SECRET_A), 'no secret in the log');
  await writeFile(policy, JSON.stringify({ tokens: [{ name: 'b', kind: 'agent', secret: SECRET_B }] }));
  assert.equal(store.reload('test'), true);
  assert.equal(store.authenticate(SECRET_A), undefined, 'the removed token is revoked');
  assert.equal(store.authenticate(SECRET_B)?.name, 'b');
  assert.equal(reloads, 1);
});

test('token store - the same secret for two tokens is refused, naming both', () => {
  const d = loadTokens({ ...NONE, token: SECRET_A, adminToken: SECRET_A });
  assert.equal(d.ok, false);
  assert.match(d.ok ? '' : (d.errors[0]?.message ?? ''), /"shared"/);
});

test('token config - no agent token refuses the start outside dev; variable and file exclude each other', () => {
  assert.throws(() => readTokenSettings({}, { dev: false }), /no agent token/);
  assert.ok(readTokenSettings({}, { dev: true }).token.length >= 32, 'dev generates one');
  assert.throws(
    () => readTokenSettings({ MESHREG_TOKEN: 'x', MESHREG_TOKEN_FILE: '/x' }, { dev: false }),
    /MESHREG_TOKEN or MESHREG_TOKEN_FILE/,
  );
  assert.throws(
    () => readTokenSettings({ MESHREG_TOKEN_POLICY_FILE: '/p' }, { dev: false }),
    /MESHREG_CLUSTER_TOKEN/,
  );
  assert.equal(readTokenSettings({ MESHREG_TOKEN: 'x' }, { dev: false }).clusterToken, 'x');
});

test('agent grants - hello, publish and watch checks, and the re-check after a reload', () => {
  let table = new Map<string, TokenGrant>([[SECRET_A, agent(rules(['web-']), { kind: 'exact', name: 'a' })]]);
  const grants = new AgentGrants({ authenticate: (s) => table.get(s) });
  assert.equal(grants.admit('c0', 'nope', 'a')?.code, 'unauthorized');
  assert.equal(grants.admit('c1', SECRET_A, 'b')?.code, 'forbidden');
  assert.equal(grants.admit('c2', SECRET_A, 'a'), undefined);
  assert.equal(grants.publishRefusal('c2', 'web-x'), undefined);
  assert.match(grants.publishRefusal('c2', 'db') ?? '', /may not publish "db"/);
  assert.match(grants.subscribeRefusal('c2', 'db') ?? '', /may not watch "db"/);
  assert.ok(grants.publishRefusal('unknown', 'web-x') !== undefined, 'no grant, no publish');
  const split = splitPublish(
    [
      { instance: makeInstance({ id: 'w', service: 'web-x' }), version: 1 },
      { instance: makeInstance({ id: 'd', service: 'db' }), version: 2 },
    ],
    (s) => grants.publishRefusal('c2', s),
  );
  assert.deepEqual(
    split.allowed.map((r) => r.instance.id),
    ['w'],
  );
  assert.deepEqual(
    split.refused.map((r) => [r.id, r.version, r.error?.code]),
    [['d', 2, 'forbidden']],
  );
  // The token now allows "db-" too: the live connection keeps going with the new rules.
  table = new Map([[SECRET_A, agent(rules(['web-', 'db']), { kind: 'exact', name: 'a' })]]);
  assert.equal(grants.recheck().size, 0);
  assert.equal(grants.publishRefusal('c2', 'db'), undefined);
  table = new Map();
  assert.deepEqual([...grants.recheck()], [['c2', { code: 'unauthorized', reason: 'token revoked' }]]);
  assert.equal(sharedAgentToken('').authenticate(''), undefined, 'no shared token admits nobody');
  assert.equal(sharedAgentToken(SECRET_A).authenticate(SECRET_A)?.name, 'shared');
});

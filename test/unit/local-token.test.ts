/**
 * The agent's local token rule, without sockets: writes need the token (header or bearer), reads
 * stay open, a token in the URL is refused whatever the setting, and no spoofable header counts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LocalAuth, assertMayLeave, isLoopbackPeer } from '../../agent/auth/local-token.js';
import { readSecuritySettings } from '../../agent/auth/security-config.js';
import { MeshregError } from '../../proto/errors.js';

const TOKEN = 'local-token-for-tests';
const q = (s = ''): URLSearchParams => new URLSearchParams(s);

function code(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof MeshregError);
    return `${err.httpStatus} ${err.code} ${err.fields?.map((f) => f.path).join(',') ?? ''}`.trim();
  }
}

test('local token - writes need it in X-Consul-Token or a bearer header; reads stay open', () => {
  const auth = new LocalAuth(TOKEN, ['/v3/discovery:endpoints']);
  const admit = (method: string, headers: Record<string, string>, path = '/v1/agent/service/register') =>
    code(() => auth.admit(method, path, headers, q(), '127.0.0.1'));
  assert.equal(admit('PUT', {}), '401 unauthorized X-Consul-Token');
  assert.equal(admit('PUT', { 'x-consul-token': 'wrong' }), '403 forbidden X-Consul-Token');
  assert.equal(admit('DELETE', { authorization: 'Bearer wrong' }), '403 forbidden X-Consul-Token');
  assert.equal(admit('PUT', { 'x-consul-token': TOKEN }), 'ok');
  assert.equal(admit('POST', { authorization: `bEaReR ${TOKEN}` }), 'ok');
  assert.equal(admit('GET', {}), 'ok');
  assert.equal(admit('HEAD', {}), 'ok');
  assert.equal(admit('POST', {}, '/v3/discovery:endpoints'), 'ok', 'REST EDS only reads');
  assert.equal(admit('POST', {}, '/v3/discovery:endpoints/'), '401 unauthorized X-Consul-Token');
  assert.equal(auth.defaultPolicy, 'deny');
});

test('local token - no header a client chooses stands in for the token', () => {
  const auth = new LocalAuth(TOKEN);
  for (const headers of [
    { 'user-agent': 'Nacos-Server' },
    { 'user-agent': 'Consul' },
    { 'x-forwarded-for': '127.0.0.1' },
    { 'x-real-ip': '127.0.0.1' },
    { host: 'localhost' },
    { 'x-consul-token': '', authorization: 'Basic ' + Buffer.from(`x:${TOKEN}`).toString('base64') },
    { cookie: `token=${TOKEN}` },
  ])
    assert.match(
      code(() => auth.admit('PUT', '/v1/agent/leave', headers, q(), '127.0.0.1')),
      /^401 /,
      JSON.stringify(headers),
    );
});

test('local token - a token in the URL is refused on every method, with or without a local token', () => {
  for (const auth of [new LocalAuth(TOKEN), new LocalAuth('')])
    for (const method of ['GET', 'PUT', 'POST', 'DELETE'])
      for (const query of [`token=${TOKEN}`, 'TOKEN=x', 'a=1&Token=', 'token'])
        assert.equal(
          code(() => auth.admit(method, '/v1/agent/services', { 'x-consul-token': TOKEN }, q(query), '::1')),
          '400 invalid_argument token',
          `${method} ?${query}`,
        );
});

test('local token - without one, writes are open and leave needs a loopback peer', () => {
  const auth = new LocalAuth('');
  assert.equal(auth.defaultPolicy, 'allow');
  const remote = auth.admit('PUT', '/v1/agent/leave', { 'x-forwarded-for': '127.0.0.1' }, q(), '10.0.0.5');
  assert.equal(
    code(() => {
      assertMayLeave(remote);
    }),
    '403 forbidden (peer)',
  );
  for (const peer of ['127.0.0.1', '::1', '::ffff:127.0.0.2']) {
    const local = auth.admit('PUT', '/v1/agent/leave', {}, q(), peer);
    assert.equal(
      code(() => {
        assertMayLeave(local);
      }),
      'ok',
      peer,
    );
  }
  const withToken = new LocalAuth(TOKEN).admit(
    'PUT',
    '/v1/agent/leave',
    { 'x-consul-token': TOKEN },
    q(),
    '10.0.0.5',
  );
  assert.equal(
    code(() => {
      assertMayLeave(withToken);
    }),
    'ok',
    'the token lets an operator make a remote agent leave',
  );
  assert.equal(isLoopbackPeer('::ffff:10.0.0.1'), false);
  assert.equal(isLoopbackPeer(undefined), false);
});

test('security config - the token comes from one source, bad check settings name their variable', () => {
  assert.equal(readSecuritySettings({}).localToken, '');
  assert.equal(readSecuritySettings({}).checkNet.allow, undefined);
  assert.equal(readSecuritySettings({}).checkNet.redirects, 'same-origin');
  assert.throws(
    () => readSecuritySettings({ MESHREG_AGENT_LOCAL_TOKEN: 'a', MESHREG_AGENT_LOCAL_TOKEN_FILE: '/x' }),
    /MESHREG_AGENT_LOCAL_TOKEN and MESHREG_AGENT_LOCAL_TOKEN_FILE/,
  );
  assert.throws(
    () => readSecuritySettings({ MESHREG_AGENT_LOCAL_TOKEN_FILE: '/nonexistent/token' }),
    /_FILE/,
  );
  assert.throws(
    () => readSecuritySettings({ MESHREG_CHECK_ALLOW: '10.0.0.0/8,bogus' }),
    /MESHREG_CHECK_ALLOW/,
  );
  assert.throws(() => readSecuritySettings({ MESHREG_CHECK_REDIRECTS: 'all' }), /MESHREG_CHECK_REDIRECTS/);
  assert.throws(
    () => readSecuritySettings({ MESHREG_CHECK_MAX_BODY_BYTES: '10' }),
    /MESHREG_CHECK_MAX_BODY_BYTES/,
  );
  assert.equal(readSecuritySettings({ MESHREG_CHECK_ALLOW: '10.0.0.0/8, ::1' }).checkNet.allow?.length, 2);
});

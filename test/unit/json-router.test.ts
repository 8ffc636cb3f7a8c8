import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MeshregError } from '../../proto/errors.js';
import { JsonRouter, type JsonHandler } from '../../proto/runtime/json-router.js';

const ok: JsonHandler = () => ({ status: 200 });

function router(): JsonRouter {
  return new JsonRouter()
    .add('GET', '/v1/agent/services', ok)
    .add('GET', '/v1/agent/service/:id', ok)
    .add('PUT', '/v1/agent/service/register', ok)
    .add('PUT', '/v1/agent/service/deregister/:id', ok)
    .add('GET', '/v1/kv/:key/meta', ok)
    .add('GET', '/v1/files/*rest', ok);
}

/** The decoded params of the route taking the request, or the code of the error answered. */
function params(method: string, path: string): Readonly<Record<string, string>> | string {
  const m = router().match(method, path);
  return m instanceof MeshregError ? m.code : m.params;
}

test('json router - params are URL-decoded', () => {
  assert.deepEqual(params('GET', '/v1/agent/service/service%3Aweb-1'), { id: 'service:web-1' });
  assert.deepEqual(params('PUT', '/v1/agent/service/deregister/a%20b%2Fc'), { id: 'a b/c' });
  assert.deepEqual(params('GET', '/v1/agent/service/caf%C3%A9'), { id: 'café' });
  assert.deepEqual(params('GET', '/v1/files/a/b%20c/d'), { rest: 'a/b c/d' });
});

test('json router - literal segments win and trailing or doubled slashes are ignored', () => {
  assert.deepEqual(params('PUT', '/v1/agent/service/register'), {});
  assert.deepEqual(params('GET', '/v1/agent/services/'), {});
  assert.deepEqual(params('GET', '//v1//agent/services'), {});
});

test('json router - an unknown path is not_found, a known path with another method is method_not_allowed', () => {
  assert.equal(params('GET', '/v1/nope'), 'not_found');
  assert.equal(params('GET', '/v1/agent/service'), 'not_found');
  assert.equal(params('GET', '/v1/agent/service/a/b'), 'not_found');
  assert.equal(params('GET', '/v1/files'), 'not_found', 'a wildcard needs at least one segment');
  assert.equal(params('DELETE', '/v1/agent/services'), 'method_not_allowed');
  assert.equal(params('POST', '/v1/agent/service/register'), 'method_not_allowed');
  // A GET on the register path is a GET of the service whose ID is "register", as in Consul.
  assert.deepEqual(params('GET', '/v1/agent/service/register'), { id: 'register' });
});

test('json router - HEAD is served by the GET handler', () => {
  assert.deepEqual(params('HEAD', '/v1/agent/service/web-1'), { id: 'web-1' });
  assert.equal(params('HEAD', '/v1/agent/service/deregister/x'), 'method_not_allowed');
});

test('json router - bad percent-encoding in a matched parameter is invalid_argument naming it', () => {
  for (const path of ['/v1/agent/service/%E0%A4%A', '/v1/agent/service/%ZZ', '/v1/files/ok/%']) {
    const m = router().match('GET', path);
    assert.ok(m instanceof MeshregError, path);
    assert.equal(m.code, 'invalid_argument');
    assert.equal(m.httpStatus, 400);
    assert.ok(['id', 'rest'].includes(m.fields[0]?.path ?? ''));
  }
});

test('json router - bad percent-encoding on a path no route takes is still not_found', () => {
  assert.equal(params('GET', '/v1/kv/%ZZ/other'), 'not_found');
  assert.equal(params('GET', '/v1/kv/%ZZ'), 'not_found');
});

/** A router whose handlers echo what they were given, or fail the way handlers do. */
function echoRouter(): JsonRouter {
  return new JsonRouter()
    .add('PUT', '/echo/:id', (req) => ({
      status: 200,
      body: { id: req.params['id'], body: req.body ?? null },
    }))
    .add('GET', '/refuse', () => {
      throw new MeshregError('forbidden', 'no');
    })
    .add('GET', '/bug', () => {
      throw new TypeError('a bug');
    });
}

test('json router - handle parses the body and answers every failure in the JSON error shape', async () => {
  const r = echoRouter();
  assert.deepEqual(await r.handle({ method: 'PUT', path: '/echo/a%20b', body: '{"x":1}' }), {
    status: 200,
    body: { id: 'a b', body: { x: 1 } },
  });
  const cases: [Parameters<JsonRouter['handle']>[0], number, string, string?][] = [
    [{ method: 'PUT', path: '/echo/1', body: '{"x":' }, 400, 'invalid_argument', '(body)'],
    [{ method: 'PUT', path: '/echo/1', body: 'x'.repeat(65) }, 413, 'payload_too_large'],
    [{ method: 'GET', path: '/nothing' }, 404, 'not_found'],
    [{ method: 'DELETE', path: '/echo/1' }, 405, 'method_not_allowed'],
    [{ method: 'GET', path: '/refuse' }, 403, 'forbidden'],
    [{ method: 'GET', path: '/bug' }, 500, 'internal'],
  ];
  for (const [req, status, code, field] of cases) {
    const a = await r.handle(req, 64);
    const error = (a.body as { error: { code: string; message: string; fields?: { path: string }[] } }).error;
    assert.equal(a.status, status, `${req.method} ${req.path}`);
    assert.equal(error.code, code);
    if (field !== undefined) assert.equal(error.fields?.[0]?.path, field);
  }
  const bug = await r.handle({ method: 'GET', path: '/bug' });
  assert.ok(!JSON.stringify(bug.body).includes('a bug'), 'a bug is not described to the client');
});

test('json router - property: no method, path or body throws out of handle; every answer is 2xx/4xx JSON', async () => {
  const r = echoRouter().add('GET', '/files/*rest', (req) => ({ status: 204, body: req.params['rest'] }));
  const segment = fc.oneof(
    fc.constantFrom('echo', 'files', 'refuse', '%', '%ZZ', '%E0%A4%A', '..', '', ':id', '*rest'),
    fc.string({ maxLength: 8 }),
  );
  const path = fc.array(segment, { maxLength: 5 }).map((s) => `/${s.join('/')}`);
  const method = fc.oneof(
    fc.constantFrom('GET', 'PUT', 'HEAD', 'DELETE', 'POST'),
    fc.string({ maxLength: 6 }),
  );
  const body = fc.oneof(
    fc.constant(undefined),
    fc.string({ maxLength: 80 }),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.uint8Array({ maxLength: 80 }),
  );
  await fc.assert(
    fc.asyncProperty(method, path, body, async (m, p, b) => {
      const a = await r.handle({ method: m, path: p, body: b }, 64);
      assert.ok((a.status >= 200 && a.status < 300) || (a.status >= 400 && a.status < 500), `${a.status}`);
      assert.equal(a.text, undefined);
      // Serialisable, and unchanged by a round trip through JSON text.
      const text = JSON.stringify(a.body ?? null);
      assert.equal(JSON.stringify(JSON.parse(text)), text, 'the body is JSON');
      if (a.status >= 400) assert.equal(typeof (a.body as { error: { code: unknown } }).error.code, 'string');
    }),
    { numRuns: 1000 },
  );
});

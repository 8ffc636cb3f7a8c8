import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Router, type Handler } from '../../agent/http/http-server.js';
import { MeshregError } from '../../proto/errors.js';

const ok: Handler = () => ({ status: 200 });

function router(): Router {
  return new Router()
    .add('GET', '/v1/agent/services', ok)
    .add('GET', '/v1/agent/service/:id', ok)
    .add('PUT', '/v1/agent/service/register', ok)
    .add('PUT', '/v1/agent/service/deregister/:id', ok)
    .add('GET', '/v1/kv/:key/meta', ok)
    .add('GET', '/v1/files/*rest', ok);
}

function params(method: string, path: string): Record<string, string> | string {
  const m = router().match(method, path);
  return typeof m === 'string' ? m : m.params;
}

test('router - params are URL-decoded', () => {
  assert.deepEqual(params('GET', '/v1/agent/service/service%3Aweb-1'), { id: 'service:web-1' });
  assert.deepEqual(params('PUT', '/v1/agent/service/deregister/a%20b%2Fc'), { id: 'a b/c' });
  assert.deepEqual(params('GET', '/v1/agent/service/caf%C3%A9'), { id: 'café' });
  assert.deepEqual(params('GET', '/v1/files/a/b%20c/d'), { rest: 'a/b c/d' });
});

test('router - literal segments win and trailing or doubled slashes are ignored', () => {
  assert.deepEqual(params('PUT', '/v1/agent/service/register'), {});
  assert.deepEqual(params('GET', '/v1/agent/services/'), {});
  assert.deepEqual(params('GET', '//v1//agent/services'), {});
});

test('router - an unknown path is not_found, a known path with another method is method_not_allowed', () => {
  assert.equal(params('GET', '/v1/nope'), 'not_found');
  assert.equal(params('GET', '/v1/agent/service'), 'not_found');
  assert.equal(params('GET', '/v1/agent/service/a/b'), 'not_found');
  assert.equal(params('GET', '/v1/files'), 'not_found', 'a wildcard needs at least one segment');
  assert.equal(params('DELETE', '/v1/agent/services'), 'method_not_allowed');
  assert.equal(params('POST', '/v1/agent/service/register'), 'method_not_allowed');
  // A GET on the register path is a GET of the service whose ID is "register", as in Consul.
  assert.deepEqual(params('GET', '/v1/agent/service/register'), { id: 'register' });
});

test('router - HEAD is served by the GET handler', () => {
  assert.deepEqual(params('HEAD', '/v1/agent/service/web-1'), { id: 'web-1' });
  assert.equal(params('HEAD', '/v1/agent/service/deregister/x'), 'method_not_allowed');
});

test('router - bad percent-encoding in a matched parameter is invalid_argument', () => {
  for (const path of ['/v1/agent/service/%E0%A4%A', '/v1/agent/service/%ZZ', '/v1/files/ok/%']) {
    assert.throws(
      () => router().match('GET', path),
      (err: unknown) =>
        err instanceof MeshregError && err.code === 'invalid_argument' && err.httpStatus === 400,
      path,
    );
  }
});

test('router - bad percent-encoding on a path no route takes is still not_found', () => {
  assert.equal(params('GET', '/v1/kv/%ZZ/other'), 'not_found');
  assert.equal(params('GET', '/v1/kv/%ZZ'), 'not_found');
});

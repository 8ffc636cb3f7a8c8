/**
 * The shared HTTP edge: the request-target parser never throws, the log limiter bounds lines per
 * second, and the agent's per-request limits (Host rule, blocking-query quota) decide as documented.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { BlockingQuota, HostPolicy, hostnameOf, isBlockingQuery } from '../../agent/http/http-limits.js';
import { bearerToken } from '../../control-plane/admin/ops-http.js';
import { MeshregError } from '../../proto/errors.js';
import {
  EDGE_LOG_LINES_PER_SEC,
  parseTarget,
  rateLimitedLog,
  safeListener,
} from '../../proto/runtime/http-edge.js';
import { createLogger } from '../../proto/runtime/log.js';

function badTarget(raw: string): MeshregError {
  const r = parseTarget(raw);
  assert.ok(r instanceof MeshregError, `${JSON.stringify(raw)} should be refused`);
  assert.equal(r.code, 'invalid_argument');
  assert.equal(r.httpStatus, 400);
  assert.equal(r.fields[0]?.path, '(target)');
  return r;
}

test('http edge - parseTarget reads origin-form paths and queries', () => {
  const r = parseTarget('/v1/health/service/web?passing&index=7');
  assert.ok(!(r instanceof MeshregError));
  assert.equal(r.path, '/v1/health/service/web');
  assert.equal(r.query.get('index'), '7');
  assert.equal(r.query.get('passing'), '');
  assert.equal(r.authority, undefined);
  const dots = parseTarget('/v1/../admin/x');
  assert.ok(!(dots instanceof MeshregError));
  assert.equal(dots.path, '/admin/x', 'dot segments resolved, so a prefix check sees the real path');
});

test('http edge - parseTarget accepts a well-formed absolute-form target and keeps its authority', () => {
  const r = parseTarget('http://localhost:8500/v1/agent/services?x=1');
  assert.ok(!(r instanceof MeshregError));
  assert.equal(r.path, '/v1/agent/services');
  assert.equal(r.authority, 'localhost:8500');
  assert.equal(r.query.get('x'), '1');
});

test('http edge - parseTarget refuses the targets that crashed processes, naming the target', () => {
  for (const raw of [
    '//',
    '//[',
    'http://[',
    '//x:99999/admin',
    'http://x:99999/',
    '*',
    '',
    'x/y',
    'ftp://h/',
  ]) {
    const err = badTarget(raw);
    assert.ok(err.message.includes(JSON.stringify(raw)), err.message);
  }
  assert.ok(badTarget('//' + 'a'.repeat(5000)).message.length < 300, 'a long target is quoted shortened');
  assert.equal(parseTarget(undefined) instanceof MeshregError, true);
});

test('http edge - parseTarget never throws: a path starting with / or the documented error', () => {
  const targets = fc.oneof(
    fc.string({ maxLength: 64 }),
    fc.string({ maxLength: 64 }).map((s) => '/' + s),
    fc.string({ maxLength: 64 }).map((s) => '//' + s),
    fc.string({ maxLength: 64 }).map((s) => 'http://' + s),
    fc.string({ unit: 'binary', maxLength: 64 }).map((s) => '/' + s),
  );
  fc.assert(
    fc.property(targets, (raw) => {
      const r = parseTarget(raw);
      if (r instanceof MeshregError) {
        assert.equal(r.code, 'invalid_argument');
        assert.deepEqual(
          r.fields.map((f) => f.path),
          ['(target)'],
        );
      } else {
        assert.ok(r.path.startsWith('/'), r.path);
      }
    }),
    { numRuns: 2000 },
  );
});

test('http edge - the edge log writes at most a few lines per second and counts the rest', () => {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('debug', {}, (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
  let nowMs = 0;
  const log = rateLimitedLog(logger, () => nowMs);
  for (let i = 0; i < 100; i++) log.error('boom', { i });
  assert.equal(lines.length, EDGE_LOG_LINES_PER_SEC);
  nowMs = 1000;
  log.warn('again');
  assert.equal(lines.length, EDGE_LOG_LINES_PER_SEC + 1);
  assert.equal(lines.at(-1)?.['suppressedBefore'], 100 - EDGE_LOG_LINES_PER_SEC);
  assert.equal(rateLimitedLog(logger), log, 'one limiter per logger');
});

test('http edge - Host rule lets loopback names and configured ones write, refuses others', () => {
  const p = new HostPolicy('127.0.0.1', ['Registry.Internal']);
  for (const h of [
    'localhost',
    'localhost:8500',
    '127.0.0.1:1',
    '127.9.8.7',
    '[::1]:8500',
    '[::1]',
    'registry.internal:80',
  ])
    assert.ok(p.allows(h), h);
  for (const h of [
    'evil.example',
    'evil.example:8500',
    '',
    '127.0.0.1.evil.example',
    'localhost.evil',
    '[::2]',
  ])
    assert.equal(p.allows(h), false, h);
  assert.equal(p.allows(undefined), false);
  assert.doesNotThrow(() => {
    p.check('GET', 'evil.example');
  }, 'reads stay open');
  assert.throws(
    () => {
      p.check('PUT', 'evil.example');
    },
    (e: unknown) => e instanceof MeshregError && e.code === 'forbidden' && e.fields[0]?.path === 'Host',
  );
  assert.ok(new HostPolicy('10.0.0.5', []).allows('10.0.0.5:8500'), 'a non-loopback bind address is allowed');
  assert.equal(new HostPolicy('0.0.0.0', []).allows('0.0.0.0'), false, 'a wildcard bind is not a name');
  assert.equal(hostnameOf('[FE80::1]:99'), 'fe80::1');
});

test('http edge - a blocking query is one with index above 0, or a REST EDS poll with wait', () => {
  const q = (s: string): URLSearchParams => new URLSearchParams(s);
  assert.ok(isBlockingQuery('GET', q('index=5&wait=1s')));
  assert.equal(isBlockingQuery('GET', q('index=0')), false);
  assert.equal(isBlockingQuery('GET', q('wait=5s')), false);
  assert.ok(isBlockingQuery('POST', q('wait=5s')));
  assert.equal(isBlockingQuery('PUT', q('index=5')), false);
});

test('http edge - blocking quota caps each client, frees once per release, clients apart', () => {
  const quota = new BlockingQuota(2);
  const r1 = quota.acquire('10.0.0.1');
  const r2 = quota.acquire('10.0.0.1');
  assert.throws(
    () => quota.acquire('10.0.0.1'),
    (e: unknown) => e instanceof MeshregError && e.code === 'rate_limited' && e.message.includes('2'),
  );
  const other = quota.acquire('10.0.0.2');
  r1();
  r1();
  assert.equal(quota.held('10.0.0.1'), 1, 'a second release of the same slot frees nothing');
  const r3 = quota.acquire('10.0.0.1');
  r2();
  r3();
  other();
  assert.equal(quota.held('10.0.0.1'), 0);
  assert.equal(quota.held('10.0.0.2'), 0);
});

test('http edge - bearer scheme is case-insensitive (RFC 7235 §2.1)', () => {
  for (const h of ['Bearer tok', 'bearer tok', 'BEARER tok', 'bEaReR  tok '])
    assert.equal(bearerToken(h), 'tok', h);
  for (const h of [undefined, '', 'Basic tok', 'Bearertok', 'Bearer '])
    assert.equal(bearerToken(h), '', String(h));
});

test('http edge - safeListener turns sync and async throws into JSON answers, logging only bugs', async (t) => {
  const lines: string[] = [];
  const logger = createLogger('info', {}, (l) => lines.push(l));
  const server = http.createServer(
    safeListener(logger, (req) => {
      if (req.url === '/sync') throw new TypeError('Invalid URL');
      if (req.url === '/meshreg') throw new MeshregError('forbidden', 'no');
      return Promise.reject(new Error('async bug'));
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const base = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  for (const [path, status, code] of [
    ['/sync', 500, 'internal'],
    ['/async', 500, 'internal'],
    ['/meshreg', 403, 'forbidden'],
  ] as const) {
    const res = await fetch(base + path);
    assert.equal(res.status, status, path);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, code);
  }
  assert.equal(lines.length, 2, 'one line per unexpected throw, none for a MeshregError');
});

/**
 * The console's static files and its pure pieces: the allow-list handler against arbitrary paths,
 * the list queries, the audit log's reasons and bounds, the drained marks, latency windows.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import type { ConsoleServiceRow } from '../../proto/console.js';
import { MeshregError } from '../../proto/errors.js';
import type { Instance } from '../../proto/instance.js';
import { parseTarget } from '../../proto/runtime/http-edge.js';
import { loadStaticFiles, resolveStatic } from '../../proto/runtime/static-files.js';
import { AuditLog, reasonOf } from '../../control-plane/console/audit-log.js';
import { readServiceQuery, selectServices } from '../../control-plane/console/console-query.js';
import { DrainedMarks, DrainedSet } from '../../control-plane/console/drained.js';
import { ErrorRing } from '../../control-plane/console/error-ring.js';
import { LatencyWindows, mergeWindows, quantile } from '../../control-plane/console/latency-windows.js';
import { silentLogger } from '../../proto/runtime/log.js';
import { makeInstance } from '../support/fixtures.js';

async function assets(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'meshreg-static-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const ui = path.join(root, 'ui');
  await mkdir(path.join(ui, 'pages'), { recursive: true });
  await writeFile(path.join(ui, 'index.html'), '<!doctype html><title>console</title>');
  await writeFile(path.join(ui, 'app.js'), 'export {};');
  await writeFile(path.join(ui, 'pages', 'overview.js'), 'export const overview = 1;');
  await writeFile(path.join(ui, '.hidden.js'), 'secret');
  await writeFile(path.join(ui, 'notes.exe'), 'binary');
  await writeFile(path.join(root, 'secret.txt'), 'TOP SECRET');
  await symlink(path.join(root, 'secret.txt'), path.join(ui, 'linked.txt'));
  return ui;
}

test('console static - only plain files of known types below the folder are on the allow-list', async (t) => {
  const files = loadStaticFiles(await assets(t));
  assert.deepEqual([...files.keys()].sort(), ['app.js', 'index.html', 'pages/overview.js']);
  assert.equal(files.get('app.js')?.type, 'text/javascript; charset=utf-8');
  assert.match(files.get('index.html')?.etag ?? '', /^"[\w-]+"$/);
  assert.equal(loadStaticFiles('/nonexistent/folder').size, 0);
});

test('console static - redirect, files, SPA fallback, 404 for missing assets, 503 without assets', async (t) => {
  const files = loadStaticFiles(await assets(t));
  assert.deepEqual(resolveStatic(files, '/ui', '/ui'), { kind: 'redirect', location: '/ui/' });
  assert.equal(resolveStatic(files, '/ui', '/other').kind, 'none');
  assert.equal(resolveStatic(files, '/ui', '/uix').kind, 'none');
  const page = resolveStatic(files, '/ui', '/ui/services/web');
  assert.ok(page.kind === 'file' && page.key === 'index.html', 'an app route gets the page');
  const js = resolveStatic(files, '/ui', '/ui/pages/overview.js');
  assert.ok(js.kind === 'file' && js.key === 'pages/overview.js');
  assert.deepEqual(resolveStatic(files, '/ui', '/ui/missing.js'), {
    kind: 'status',
    status: 404,
    text: 'Not found.',
  });
  const none = resolveStatic(new Map(), '/ui', '/ui/');
  assert.ok(none.kind === 'status' && none.status === 503);
});

const segment = fc.oneof(
  fc.constantFrom('..', '.', '', '%2e%2e', '%2E%2E', '%2e', '..%2f', '%2f', '%5c..', 'ui', 'pages', 'app.js'),
  fc.constantFrom('index.html', 'overview.js', 'secret.txt', 'linked.txt', '.hidden.js', 'notes.exe', '%00'),
  fc.string({ maxLength: 8 }),
);

test('console static - no request path ever resolves outside the allow-list (fast-check)', async (t) => {
  const files = loadStaticFiles(await assets(t));
  const bodies = new Set([...files.values()].map((f) => f.body));
  fc.assert(
    fc.property(fc.array(segment, { maxLength: 8 }), fc.boolean(), (segs, doubled) => {
      const raw = `/ui/${doubled ? '/' : ''}${segs.join('/')}`;
      const target = parseTarget(raw);
      if (target instanceof MeshregError) return;
      const a = resolveStatic(files, '/ui', target.path);
      if (a.kind !== 'file') return;
      assert.ok(bodies.has(a.file.body), `${raw} served a file from the table`);
      assert.ok(files.get(a.key) === a.file, `${raw}: ${a.key} is an allow-listed key`);
      assert.ok(!a.file.body.toString().includes('SECRET'), raw);
    }),
    { numRuns: 2000 },
  );
});

const row = (
  name: string,
  critical: number,
  zones: string[] = [],
  tags: string[] = [],
): ConsoleServiceRow => ({
  name,
  instances: critical + 1,
  passing: 1,
  warning: 0,
  critical,
  draining: 0,
  zones,
  tags,
});

test('console query - filters, sorts, and refuses bad parameters naming them', () => {
  const rows = [row('web', 0, ['z1'], ['v1']), row('api', 2, ['z2']), row('webhook', 1, ['z1'])];
  const q = (s: string) => readServiceQuery(new URLSearchParams(s));
  assert.deepEqual(
    selectServices(rows, q('filter=WEB')).map((r) => r.name),
    ['web', 'webhook'],
  );
  assert.deepEqual(
    selectServices(rows, q('health=critical&sort=-critical')).map((r) => r.name),
    ['api', 'webhook'],
  );
  assert.deepEqual(
    selectServices(rows, q('zone=z1&tag=v1')).map((r) => r.name),
    ['web'],
  );
  assert.deepEqual(
    selectServices(rows, q('sort=-name')).map((r) => r.name),
    ['webhook', 'web', 'api'],
  );
  for (const [bad, param] of [
    ['limit=501', 'limit'],
    ['limit=0', 'limit'],
    ['offset=-1', 'offset'],
    ['sort=size', 'sort'],
    ['health=ok', 'health'],
  ] as const)
    assert.throws(
      () => q(bad),
      (e: unknown) =>
        e instanceof MeshregError && e.code === 'invalid_argument' && e.fields?.[0]?.path === param,
    );
});

test('console query - 10,000 services are filtered and sorted well within a request', () => {
  const rows = Array.from({ length: 10_000 }, (_, i) => row(`svc-${String(i).padStart(5, '0')}`, i % 3));
  const t0 = performance.now();
  const out = selectServices(rows, readServiceQuery(new URLSearchParams('sort=-critical&filter=svc')));
  assert.equal(out.length, 10_000);
  assert.equal(out[0]?.critical, 2);
  assert.ok(performance.now() - t0 < 500, 'fast enough to answer per request');
});

test('console audit - reasons are required where asked, bounded, and the log keeps the newest', () => {
  assert.equal(reasonOf({}, false), '');
  assert.equal(reasonOf({ reason: ' why ' }, true), 'why');
  for (const body of [{}, { reason: '' }, { reason: '  ' }, { reason: 'x'.repeat(513) }, { reason: 5 }])
    assert.throws(
      () => reasonOf(body, true),
      (e: unknown) => e instanceof MeshregError && e.fields?.[0]?.path === 'reason',
    );
  const log = new AuditLog(100);
  for (let i = 0; i < 250; i++)
    log.append({ at: i, who: 'a', action: 'x', target: String(i), reason: '', result: 'ok' });
  const v = log.view(3);
  assert.equal(v.total, 100);
  assert.deepEqual(
    v.records.map((r) => r.target),
    ['249', '248', '247'],
  );
  assert.equal(log.appended, 250);
});

const inst = (node: string, id: string): Instance =>
  makeInstance({ id, service: 'web', node, nodeId: `${node}-id` });

test('console drained - a node or an instance is marked draining and critical, and restored', () => {
  const sent: unknown[] = [];
  const set = new DrainedSet((s) => sent.push(s));
  const marks = new DrainedMarks();
  const list = [inst('a', 'w1'), inst('a', 'w2'), inst('b', 'w1')];
  assert.equal(marks.mark(list), list, 'nothing drained: the same list');
  set.set('a', 'w2', true);
  assert.deepEqual([...(marks.apply(set.state) ?? [])], ['a']);
  assert.deepEqual(
    marks.mark(list).map((i) => i.draining === true),
    [false, true, false],
  );
  set.set('b', undefined, true);
  marks.apply(set.state);
  const marked = marks.mark(list);
  assert.deepEqual(
    marked.map((i) => i.health),
    ['passing', 'critical', 'critical'],
  );
  assert.equal(marked[2]?.checks.at(-1)?.id, 'meshreg:drained');
  assert.equal(marks.apply({ ...set.state, version: 1 }), undefined, 'an older set is ignored');
  set.set('a', 'w2', false);
  set.set('b', undefined, false);
  marks.apply(set.state);
  assert.equal(marks.mark(list), list);
  assert.equal(sent.length, 4);
});

test('console latency - windows keep bounded samples; merged windows add counts and bound p99', () => {
  let now = 0;
  const w = new LatencyWindows(1000, 3, () => now);
  for (let i = 1; i <= 100; i++) w.record(i);
  now = 1500;
  w.record(7);
  const v = w.view();
  assert.deepEqual(
    v.map((x) => [x.at, x.count, x.p50Ms, x.p99Ms]),
    [
      [1000, 100, 50, 99],
      [2000, 1, 7, 7],
    ],
  );
  now = 10_000;
  assert.deepEqual(w.view(), [], 'old windows age out');
  assert.equal(quantile([], 0.5), 0);
  const merged = mergeWindows([v, [{ at: 1000, windowMs: 1000, count: 100, p50Ms: 10, p99Ms: 500 }]]);
  assert.deepEqual(
    merged.map((x) => [x.count, x.p50Ms, x.p99Ms]),
    [
      [200, 30, 500],
      [1, 7, 7],
    ],
  );
});

test('console errors - a role keeps its last errors, newest first, bounded', () => {
  const ring = new ErrorRing('session', () => 's1');
  const log = ring.wrap(silentLogger).child({ x: 1 });
  log.warn('not kept');
  for (let i = 0; i < 60; i++) log.error(`e${i}`, { code: 'unavailable' });
  const r = ring.recent();
  assert.equal(r.length, 50);
  assert.equal(r[0]?.message, 'e59');
  assert.equal(r[49]?.message, 'e10');
  assert.equal(r[0]?.code, 'unavailable');
  assert.equal(r[0]?.member, 's1');
});

import assert from 'node:assert/strict';
import { appendFile, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { LocalServices, type ServiceDefinition } from '../../agent/local/local-services.js';
import { LEGACY_STATE_FILE, LOCAL_LOG_FILE, LocalStore } from '../../agent/local/local-store.js';
import type { PersistedState } from '../../agent/local/local-services.js';
import { createLogger } from '../../proto/runtime/log.js';
import { VersionClock } from '../../proto/version.js';
import { makeCheck } from '../support/fixtures.js';
import { tempDir } from '../support/process.js';

function def(id: string, name = 'web'): ServiceDefinition {
  return {
    id,
    name,
    tags: [],
    address: '',
    port: 8080,
    meta: {},
    weights: { passing: 1, warning: 1 },
    enableTagOverride: false,
  };
}

const NO_NODE_CHECKS = (): Pick<PersistedState, 'nodeChecks' | 'checkStatus'> => ({
  nodeChecks: [],
  checkStatus: {},
});

/** An agent's local state over `dir`: restored from what is there, as the agent starts. */
async function open(dir: string): Promise<{ local: LocalServices; store: LocalStore; logs: string[] }> {
  const logs: string[] = [];
  const logger = createLogger('debug', {}, (line) => logs.push(line));
  const local = new LocalServices(new VersionClock());
  const store = new LocalStore(dir, local, NO_NODE_CHECKS, logger);
  await store.restore((state) => {
    local.restore(state);
  });
  return { local, store, logs };
}

async function freshDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const { dir, cleanup } = await tempDir('meshreg-unit-');
  t.after(cleanup);
  return dir;
}

test('local store - a registration appends its record only, and a restart restores every change', async (t) => {
  const dir = await freshDir(t);
  const a = await open(dir);
  for (let i = 0; i < 50; i++) a.local.register(def(`web-${String(i)}`));
  await a.store.flush();
  const before = (await readFile(path.join(dir, LOCAL_LOG_FILE), 'utf8')).length;
  a.local.register(def('one-more', 'api'));
  await a.store.flush();
  const after = (await readFile(path.join(dir, LOCAL_LOG_FILE), 'utf8')).length;
  assert.ok(after - before < 400, `one record appended (${String(after - before)} bytes), not the state`);
  a.local.deregister('web-3');
  a.local.register(def('web-7', 'renamed'));
  a.local.setChecks('web-9', [makeCheck('c9', 'critical')]);
  await a.store.close();

  const b = await open(dir);
  assert.equal(b.local.size, 50);
  assert.equal(b.local.get('web-3'), undefined);
  assert.deepEqual(
    b.local.tombstones().map((x) => x.id),
    ['web-3'],
    'the removal is still to be sent',
  );
  assert.equal(b.local.get('web-7')?.def.name, 'renamed');
  assert.equal(b.local.get('web-9')?.checks[0]?.status, 'critical');
  assert.equal(b.local.get('one-more')?.def.name, 'api');
  // Versions continue above what was stored (invariant 7).
  const highest = Math.max(...b.local.list().map((r) => r.version));
  assert.ok(b.local.register(def('x')).version > highest);
  await b.store.close();
});

test('local store - a write torn by a crash is ignored; everything before it is restored', async (t) => {
  const dir = await freshDir(t);
  const a = await open(dir);
  a.local.register(def('web-1'));
  a.local.register(def('web-2'));
  await a.store.close();
  await appendFile(path.join(dir, LOCAL_LOG_FILE), '["s/web-3",{"def":{"id":"web-3","na');
  const b = await open(dir);
  assert.deepEqual(
    b.local.list().map((r) => r.def.id),
    ['web-1', 'web-2'],
  );
  assert.ok(b.logs.some((l) => l.includes('cut short by a crash')));
  // The restore rewrote the log: no torn tail is left for the next start.
  assert.ok((await readFile(path.join(dir, LOCAL_LOG_FILE), 'utf8')).endsWith('\n'));
  await b.store.close();
});

test("local store - an older agent's whole-state file is read once and replaced by the log", async (t) => {
  const dir = await freshDir(t);
  const legacy = {
    services: [{ def: def('old-1'), version: 5, synced: true, checks: [], checkDefinitions: [] }],
    tombstones: [{ id: 'gone', service: 'web', version: 4 }],
    nodeChecks: [],
    checkStatus: {},
  };
  await writeFile(path.join(dir, LEGACY_STATE_FILE), JSON.stringify(legacy));
  const a = await open(dir);
  assert.equal(a.local.get('old-1')?.version, 5);
  assert.deepEqual(
    a.local.tombstones().map((x) => x.id),
    ['gone'],
  );
  assert.deepEqual((await readdir(dir)).sort(), [LOCAL_LOG_FILE]);
  await a.store.close();
  const b = await open(dir);
  assert.equal(b.local.get('old-1')?.version, 5, 'the log carries on what the file held');
  await b.store.close();
});

test('local store - a registration after a removal of the same ID wins on restore', async (t) => {
  const dir = await freshDir(t);
  const a = await open(dir);
  a.local.register(def('web-1'));
  a.local.deregister('web-1');
  a.local.register(def('web-1'));
  await a.store.close();
  const b = await open(dir);
  assert.ok(b.local.get('web-1') !== undefined);
  assert.deepEqual(b.local.tombstones(), []);
  await b.store.close();
});

import assert from 'node:assert/strict';
import { readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { readJsonFile, writeJsonAtomic } from '../../agent/local/state-file.js';
import { tempDir } from '../support/process.js';

async function freshDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const { dir, cleanup } = await tempDir('meshreg-unit-');
  t.after(cleanup);
  return dir;
}

test('state file - a written value reads back, and no temp file is left behind', async (t) => {
  const dir = await freshDir(t);
  const file = path.join(dir, 'nested', 'state.json');
  const value = { services: [{ id: 'web-1', tags: ['ü', '😀'] }], tombstones: [] };
  await writeJsonAtomic(file, value);
  assert.deepEqual(await readJsonFile(file), { kind: 'ok', value });
  await writeJsonAtomic(file, { services: [], tombstones: [] });
  assert.deepEqual(await readJsonFile(file), { kind: 'ok', value: { services: [], tombstones: [] } });
  assert.deepEqual(await readdir(path.join(dir, 'nested')), ['state.json']);
});

test('state file - a missing file is reported as missing', async (t) => {
  const dir = await freshDir(t);
  assert.deepEqual(await readJsonFile(path.join(dir, 'none.json')), { kind: 'missing' });
});

test('state file - a corrupt file is moved aside, kept, and reported', async (t) => {
  const dir = await freshDir(t);
  const file = path.join(dir, 'state.json');
  await writeFile(file, '{"services": [');
  const r = await readJsonFile(file);
  assert.equal(r.kind, 'corrupt');
  assert.ok(r.kind === 'corrupt');
  assert.match(r.reason, /^not valid JSON: /);
  assert.ok(r.movedTo.startsWith(`${file}.corrupt-`));
  assert.equal(await readFile(r.movedTo, 'utf8'), '{"services": [', 'the bad content is kept');
  assert.deepEqual(await readJsonFile(file), { kind: 'missing' }, 'the next start begins empty');
});

test('state file - a path that cannot be read as a file is reported as unreadable', async (t) => {
  const dir = await freshDir(t);
  const folder = path.join(dir, 'state.json');
  await mkdir(folder);
  const r = await readJsonFile(folder);
  assert.ok(r.kind === 'corrupt');
  assert.match(r.reason, /^unreadable: /);
});

import assert from 'node:assert/strict';
import { readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { GroupWriter, readJsonFile, writeJsonAtomic } from '../../agent/local/state-file.js';
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

test('state file - GroupWriter coalesces concurrent writes and ends with the latest snapshot', async (t) => {
  const dir = await freshDir(t);
  const file = path.join(dir, 'state.json');
  let state = 0;
  const snapshots: number[] = [];
  const errors: unknown[] = [];
  const writer = new GroupWriter(
    file,
    () => {
      snapshots.push(state);
      return { state };
    },
    (err) => errors.push(err),
  );
  state = 1;
  const first = writer.write();
  assert.equal(writer.write(), first, 'asks before the write starts share it');
  await Promise.resolve();
  await Promise.resolve();
  // The first write has started; later asks need a later write, and share one.
  state = 2;
  const second = writer.write();
  state = 3;
  const third = writer.write();
  assert.notEqual(second, first);
  assert.equal(third, second);
  state = 4;
  await Promise.all([first, second, third]);
  assert.deepEqual(snapshots, [1, 4], 'two writes for five asks, each with the state of its start');
  assert.deepEqual(await readJsonFile(file), { kind: 'ok', value: { state: 4 } });
  assert.deepEqual(errors, []);
});

test('state file - GroupWriter reports a failed write and keeps working', async (t) => {
  const dir = await freshDir(t);
  const blocker = path.join(dir, 'not-a-dir');
  await writeFile(blocker, 'x');
  const errors: unknown[] = [];
  const broken = new GroupWriter(
    path.join(blocker, 'state.json'),
    () => ({}),
    (err) => errors.push(err),
  );
  await broken.write();
  assert.equal(errors.length, 1);
  await broken.write();
  assert.equal(errors.length, 2, 'a later write is attempted again');
});

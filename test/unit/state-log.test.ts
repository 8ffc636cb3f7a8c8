import assert from 'node:assert/strict';
import { appendFile, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { StateLog, loadStateLog } from '../../agent/local/state-log.js';
import { tempDir } from '../support/process.js';

async function freshDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const { dir, cleanup } = await tempDir('meshreg-unit-');
  t.after(cleanup);
  return dir;
}

/** A log over a plain map, as an owner keeps its state. */
function logOver(
  file: string,
  state: Map<string, unknown>,
  errors: unknown[] = [],
  compactMinBytes?: number,
): { log: StateLog; set: (k: string, v: unknown) => void } {
  const log = new StateLog(file, {
    entries: () => state.entries(),
    onError: (err) => errors.push(err),
    ...(compactMinBytes === undefined ? {} : { compactMinBytes }),
  });
  const set = (k: string, v: unknown): void => {
    if (v === undefined) state.delete(k);
    else state.set(k, v);
    log.put(k, v);
  };
  return { log, set };
}

test('state log - puts and removals replay to the live entries', async (t) => {
  const file = path.join(await freshDir(t), 'state.jsonl');
  const state = new Map<string, unknown>();
  const { log, set } = logOver(file, state);
  set('a', { n: 1 });
  set('b', [1, 2]);
  set('a', { n: 2 });
  set('b', undefined);
  set('c', 'x');
  await log.flush();
  const r = await loadStateLog(file);
  assert.ok(r.kind === 'ok');
  assert.deepEqual([...r.entries], [...state]);
  assert.equal(r.tornTail, false);
  assert.equal(r.badLines, 0);
  await log.close();
});

test('state log - changes of one turn go to disk in one append (group commit)', async (t) => {
  const file = path.join(await freshDir(t), 'state.jsonl');
  const { log, set } = logOver(file, new Map());
  set('first', 1);
  const firstWrite = log.flush();
  for (let i = 0; i < 100; i++) set(`k${String(i)}`, i);
  assert.equal(log.flush(), firstWrite, 'puts before the write starts share it');
  await firstWrite;
  assert.equal((await readFile(file, 'utf8')).split('\n').length, 102, '101 lines, one write');
  // While one write is in flight, later puts share the next one.
  set('x', 1);
  const second = log.flush();
  await Promise.resolve();
  await Promise.resolve();
  set('y', 2);
  const third = log.flush();
  set('z', 3);
  assert.equal(log.flush(), third);
  await Promise.all([second, third]);
  const r = await loadStateLog(file);
  assert.ok(r.kind === 'ok');
  assert.deepEqual([r.entries.get('x'), r.entries.get('y'), r.entries.get('z')], [1, 2, 3]);
  await log.close();
});

test('state log - a torn last line is ignored and the lines before it are kept', async (t) => {
  const file = path.join(await freshDir(t), 'state.jsonl');
  const { log, set } = logOver(file, new Map());
  set('svc/a', { port: 1 });
  set('svc/b', { port: 2 });
  await log.close();
  // A crash in the middle of the next append: half a line, no newline.
  await appendFile(file, '["svc/c",{"po');
  const r = await loadStateLog(file);
  assert.ok(r.kind === 'ok');
  assert.equal(r.tornTail, true);
  assert.equal(r.badLines, 0);
  assert.equal(r.movedTo, undefined, 'a torn tail is normal after a crash, not corruption');
  assert.deepEqual([...r.entries.keys()], ['svc/a', 'svc/b']);
});

test('state log - a damaged line in the middle is skipped, reported, and the file copied aside', async (t) => {
  const dir = await freshDir(t);
  const file = path.join(dir, 'state.jsonl');
  await writeFile(file, '["a",1]\n\u0000\u0000garbage\n{"not":"an entry"}\n["b",2]\n');
  const r = await loadStateLog(file);
  assert.ok(r.kind === 'ok');
  assert.equal(r.badLines, 2);
  assert.deepEqual(
    [...r.entries],
    [
      ['a', 1],
      ['b', 2],
    ],
  );
  assert.ok(r.movedTo !== undefined && (await readdir(dir)).includes(path.basename(r.movedTo)));
});

test('state log - a missing file loads as missing', async (t) => {
  const dir = await freshDir(t);
  assert.deepEqual(await loadStateLog(path.join(dir, 'none.jsonl')), { kind: 'missing' });
});

test('state log - the log is compacted from the live state once it doubles, and replays the same', async (t) => {
  const dir = await freshDir(t);
  const file = path.join(dir, 'state.jsonl');
  const state = new Map<string, unknown>();
  const { log, set } = logOver(file, state, [], 4096);
  let peak = 0;
  // 20 keys rewritten 200 times: without compaction the file would reach ~4,000 lines.
  for (let round = 0; round < 200; round++) {
    for (let k = 0; k < 20; k++) set(`key-${String(k)}`, { round, pad: 'x'.repeat(20) });
    await log.flush();
    peak = Math.max(peak, (await stat(file)).size);
  }
  assert.ok(peak < 3 * 4096 + 2048, `the file stays bounded (peak ${String(peak)} bytes)`);
  const r = await loadStateLog(file);
  assert.ok(r.kind === 'ok');
  assert.deepEqual(new Map(r.entries), state);
  assert.deepEqual(
    (await readdir(dir)).filter((f) => f.endsWith('.tmp')),
    [],
    'no temp file left behind',
  );
  await log.close();
});

test('state log - compact() rewrites the file to exactly the live entries', async (t) => {
  const file = path.join(await freshDir(t), 'state.jsonl');
  const state = new Map<string, unknown>();
  const { log, set } = logOver(file, state);
  for (let i = 0; i < 10; i++) set('k', i);
  set('gone', 1);
  set('gone', undefined);
  await log.compact();
  assert.equal(await readFile(file, 'utf8'), '["k",9]\n');
  set('after', true);
  await log.close();
  const r = await loadStateLog(file);
  assert.ok(r.kind === 'ok');
  assert.deepEqual(
    [...r.entries],
    [
      ['k', 9],
      ['after', true],
    ],
  );
});

test('state log - a failed write is reported, and a later write is attempted again', async (t) => {
  const dir = await freshDir(t);
  const blocker = path.join(dir, 'not-a-dir');
  await writeFile(blocker, 'x');
  const errors: unknown[] = [];
  const { log, set } = logOver(path.join(blocker, 'state.jsonl'), new Map(), errors);
  set('a', 1);
  await log.flush();
  assert.equal(errors.length, 1);
  set('b', 1);
  await log.flush();
  assert.equal(errors.length, 2);
});

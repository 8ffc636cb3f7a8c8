/**
 * The README stays true: it lists every MESHREG_ variable the code reads, and both quick-start commands.
 */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sources(rel)));
    else if (entry.name.endsWith('.ts')) out.push(rel);
  }
  return out;
}

test('readme - documents every MESHREG_ variable the code reads', async () => {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const files = [...(await sources('agent')), ...(await sources('control-plane')), ...(await sources('bin'))];
  const read = new Set<string>();
  for (const f of files) {
    const text = await readFile(path.join(ROOT, f), 'utf8');
    for (const m of text.matchAll(/'(MESHREG_[A-Z0-9_]+)'/g)) if (m[1] !== undefined) read.add(m[1]);
  }
  assert.ok(read.size > 10, 'found the variables');
  const missing = [...read].filter((v) => !readme.includes(`\`${v}\``));
  assert.deepEqual(missing, []);
});

test('readme - shows the two quick-start commands', async () => {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  assert.match(readme, /npm ci && npm start/);
  assert.match(readme, /npm ci && npm test/);
});

/**
 * The README's two-data-center example runs as written: `examples/two-datacenters/run.sh` starts two
 * federated data centers and an agent in each, reads dc1's `web` from dc2, and shows dc2 keeping the
 * copy (marked stale) after dc1 is killed. Ports come from a random base, away from the defaults.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

test('example - two data centers on one machine', async () => {
  const base = 20_000 + Math.floor(Math.random() * 50) * 100;
  const { stdout } = await promisify(execFile)('bash', [path.join(ROOT, 'examples/two-datacenters/run.sh')], {
    cwd: ROOT,
    env: { ...process.env, BASE: String(base), AGENT_BASE: String(base + 5_000) },
    timeout: 120_000,
  });
  assert.match(stdout, /\["dc2","dc1"\]/);
  const [, afterKill = ''] = stdout.split('# kill dc1');
  const [beforeKill = ''] = stdout.split('# kill dc1');
  assert.match(beforeKill, /"Datacenter":"dc1"[^\n]*"ID":"web-1"/, 'dc1 web read in dc2');
  assert.match(beforeKill, /No path to datacenter \(HTTP 500\)/);
  assert.match(afterKill, /x-consul-knownleader: false/i);
  assert.match(afterKill, /x-cache: HIT/i);
  assert.match(afterKill, /"ID":"web-1"/, 'the last copy is still served');
});

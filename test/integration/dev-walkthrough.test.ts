/**
 * `meshreg dev` (what `npm start` runs) and the README's curl walk-through, run as written, with only
 * the agent's port changed to a free one.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startMeshreg, tempDir, type Started } from '../support/process.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The commands of the README's walk-through block, continuation lines joined. */
async function walkthrough(): Promise<string[]> {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const block = /<!-- walkthrough:start -->\s*```sh\n([\s\S]*?)```\s*<!-- walkthrough:end -->/.exec(
    readme,
  )?.[1];
  assert.ok(block !== undefined, 'README has a walk-through block');
  return block
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .filter((l) => l.startsWith('curl '));
}

describe('dev walk-through', () => {
  let dev: Started;
  let cleanup: () => Promise<void> = () => Promise.resolve();

  before(async () => {
    const tmp = await tempDir();
    cleanup = tmp.cleanup;
    dev = await startMeshreg('dev', {
      MESHREG_AGENT_PORT: '0',
      MESHREG_SESSION_PORT: '0',
      MESHREG_AGENT_DATA_DIR: tmp.dir,
    });
  });

  after(async () => {
    await dev.stop();
    await cleanup();
  });

  test('readme - the curl walk-through registers, discovers and deregisters', async () => {
    const port = new URL(dev.addresses['agent'] ?? '').port;
    const commands = await walkthrough();
    assert.equal(commands.length, 5);
    const outputs: string[] = [];
    for (const cmd of commands) {
      const { stdout } = await run('sh', ['-c', cmd.replaceAll('127.0.0.1:8500', `127.0.0.1:${port}`)]);
      outputs.push(stdout);
    }
    const [registered, discovered, catalog, deregistered, after] = outputs;
    assert.equal(registered, '');
    const list = JSON.parse(discovered ?? '') as {
      Service: { ID: string; Port: number; Meta: Record<string, string> };
    }[];
    assert.deepEqual(
      list.map((e) => [e.Service.ID, e.Service.Port, e.Service.Meta['version']]),
      [['web-1', 8080, '1.0']],
    );
    assert.deepEqual(JSON.parse(catalog ?? ''), { web: ['v1'] });
    assert.equal(deregistered, '');
    assert.deepEqual(JSON.parse(after ?? ''), []);
  });

  test('dev - stops cleanly on SIGTERM with exit code 0', async () => {
    assert.equal(await dev.stop('SIGTERM'), 0);
    assert.match(dev.logs(), /"msg":"stopping"/);
  });
});

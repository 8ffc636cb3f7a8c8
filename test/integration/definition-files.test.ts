/**
 * Service definition files: loaded at start, reloaded on change, removed with their file; a broken
 * file is reported and does not deregister what it defined before.
 */
import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { http } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

describe('definition files', () => {
  let dev: Started;
  let confDir = '';
  let cleanup: () => Promise<void> = () => Promise.resolve();

  const services = async (): Promise<Record<string, { Tags: string[]; Port: number }>> =>
    (await http('GET', `${dev.addresses['agent'] ?? ''}/v1/agent/services`)).body as Record<
      string,
      { Tags: string[]; Port: number }
    >;

  before(async () => {
    const tmp = await tempDir();
    cleanup = tmp.cleanup;
    confDir = path.join(tmp.dir, 'conf.d');
    await mkdir(confDir);
    await writeFile(
      path.join(confDir, 'web.json'),
      JSON.stringify({ service: { name: 'web', id: 'web-1', port: 8080, tags: ['v1'] } }),
    );
    dev = await startMeshreg('dev', {
      MESHREG_AGENT_DATA_DIR: path.join(tmp.dir, 'agent'),
      MESHREG_AGENT_CONFIG_DIR: confDir,
      MESHREG_AGENT_CONFIG_RELOAD_MS: '100',
    });
  });

  after(async () => {
    await dev.stop();
    await cleanup();
  });

  test('files - a definition present at start is registered and discoverable', async () => {
    assert.deepEqual((await services())['web-1']?.Tags, ['v1']);
    const r = await http('GET', `${dev.addresses['agent'] ?? ''}/v1/health/service/web`);
    assert.equal((r.body as unknown[]).length, 1);
  });

  test('files - a changed file re-registers, a new file adds, several services per file work', async () => {
    await writeFile(
      path.join(confDir, 'web.json'),
      JSON.stringify({ service: { name: 'web', id: 'web-1', port: 8080, tags: ['v2'] } }),
    );
    await writeFile(
      path.join(confDir, 'more.json'),
      JSON.stringify({
        services: [
          { Name: 'api', ID: 'api-1', Port: 9000 },
          { Name: 'db', Port: 5432 },
        ],
      }),
    );
    await waitFor('reloaded', async () => {
      const s = await services();
      return s['web-1']?.Tags[0] === 'v2' && s['api-1']?.Port === 9000 && s['db']?.Port === 5432;
    });
  });

  test('files - a broken file is reported and keeps what it defined before', async () => {
    await writeFile(path.join(confDir, 'more.json'), '{"services": [{"Name": 12}]}');
    // The agent may catch the file half-written first (and say so); what counts is the error it
    // reports once the whole file is there.
    await waitFor('the field error logged', () => /services\[0\]: Name: must be a string/.test(dev.logs()));
    assert.match(dev.logs(), /invalid service definition file/);
    const s = await services();
    assert.ok(s['api-1'] !== undefined && s['db'] !== undefined, 'services of the broken file stay');
  });

  test('files - removing a file deregisters its services', async () => {
    await rm(path.join(confDir, 'more.json'));
    await waitFor('deregistered', async () => {
      const s = await services();
      return s['api-1'] === undefined && s['db'] === undefined && s['web-1'] !== undefined;
    });
  });
});

/** `meshreg ctl` against a real dev process: tables for people, JSON for scripts, clear failures. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ctl } from '../support/ctl.js';
import { http } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const ADMIN = 'ctl-admin';

describe('ctl', () => {
  let dev: Started;
  let cleanup: () => Promise<void> = () => Promise.resolve();
  let env: Record<string, string> = {};

  before(async () => {
    const tmp = await tempDir();
    cleanup = tmp.cleanup;
    dev = await startMeshreg('dev', { MESHREG_ADMIN_TOKEN: ADMIN, MESHREG_AGENT_DATA_DIR: tmp.dir });
    env = { MESHREG_CTL_META: dev.addresses['meta'] ?? '', MESHREG_ADMIN_TOKEN: ADMIN };
    await http('PUT', `${dev.addresses['agent'] ?? ''}/v1/agent/service/register`, { Name: 'web', Port: 80 });
  });

  after(async () => {
    await dev.stop();
    await cleanup();
  });

  test('ctl - --help lists the commands', async () => {
    const r = await ctl(['--help'], env);
    assert.equal(r.code, 0);
    for (const c of [
      'members',
      'slots',
      'service',
      'connections',
      'push stop',
      'client-off',
      'blacklist',
      'drain',
    ])
      assert.ok(r.stdout.includes(c), c);
  });

  test('ctl - members as a table and as JSON', async () => {
    const table = await ctl(['members'], env);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ID\s+ROLE\s+CONNECTED/);
    assert.match(table.stdout, /\bdata\b/);
    const json = await ctl(['--json', 'members'], env);
    const body = JSON.parse(json.stdout) as { members: { role: string }[] };
    assert.deepEqual(body.members.map((m) => m.role).sort(), ['data', 'session']);
  });

  test('ctl - a service on each replica, and the connections of each session', async () => {
    const svc = await waitFor('web on its replica', async () => {
      const r = await ctl(['--json', 'service', 'web'], env);
      const b = JSON.parse(r.stdout) as { replicas: { role: string; instances: number }[] };
      return b.replicas[0]?.instances === 1 ? b : undefined;
    });
    assert.equal(svc.replicas[0]?.role, 'leader');
    const conns = await ctl(['connections'], env);
    assert.match(conns.stdout, /127\.0\.0\.1/);
  });

  test('ctl - switches round trip', async () => {
    const stop = await ctl(['--json', 'push', 'stop', '--allow', '10.0.0.7'], env);
    assert.equal(stop.code, 0, stop.stderr);
    assert.deepEqual(JSON.parse(stop.stdout), {
      ...JSON.parse(stop.stdout),
      pushStopped: true,
      pushAllow: ['10.0.0.7'],
    });
    const resume = await ctl(['--json', 'push', 'resume'], env);
    assert.equal((JSON.parse(resume.stdout) as { pushStopped: boolean }).pushStopped, false);
    const bl = await ctl(['blacklist', 'publish', 'add', 'legacy'], env);
    assert.match(bl.stdout, /publishBlacklist\s+legacy/);
  });

  test('ctl - failures are clear and exit non-zero', async () => {
    const noToken = await ctl(['members'], { ...env, MESHREG_ADMIN_TOKEN: '' });
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /401 unauthorized/);
    const usage = await ctl(['blacklist', 'nope'], env);
    assert.equal(usage.code, 2);
    const bad = await ctl(['blacklist', 'publish', 'add', 'not a name'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /add\[0\]/);
  });
});

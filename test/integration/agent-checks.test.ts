/**
 * Health checks run by the agent, end to end: HTTP (2xx/429/other, a hung server), TCP, TTL with the
 * check endpoints, Consul's thresholds, DeregisterCriticalServiceAfter, and health travelling with the
 * instance to another agent.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { http as call } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'checks-token';

interface CheckJson {
  Status: string;
  Output: string;
  Type: string;
}

describe('agent checks', () => {
  let dev: Started;
  let other: Started;
  let agent = '';
  let remote = '';
  let code = 200;
  let target: http.Server;
  let targetPort = 0;
  let hung: net.Server;
  let hungPort = 0;
  const hungSockets = new Set<net.Socket>();
  const cleanups: (() => Promise<void>)[] = [];

  const checks = async (): Promise<Record<string, CheckJson>> =>
    (await call('GET', `${agent}/v1/agent/checks`)).body as Record<string, CheckJson>;
  const status = async (id: string): Promise<string | undefined> => (await checks())[id]?.Status;
  const passingCount = async (base: string, service: string): Promise<number> =>
    ((await call('GET', `${base}/v1/health/service/${service}?passing`)).body as unknown[]).length;
  const register = async (body: unknown): Promise<void> => {
    const r = await call('PUT', `${agent}/v1/agent/service/register`, body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  };

  before(async () => {
    target = http.createServer((_req, res) => res.writeHead(code).end(`status ${code}`));
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    targetPort = (target.address() as net.AddressInfo).port;
    // Accepts connections and never answers: a hung process.
    hung = net.createServer((s) => {
      hungSockets.add(s);
      s.on('close', () => hungSockets.delete(s));
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    hungPort = (hung.address() as net.AddressInfo).port;
    const a = await tempDir();
    const b = await tempDir();
    cleanups.push(a.cleanup, b.cleanup);
    const fast = {
      MESHREG_CHECK_MIN_INTERVAL_MS: '50',
      MESHREG_CHECK_MIN_DEREGISTER_MS: '300',
      MESHREG_CHECK_REAP_INTERVAL_MS: '100',
    };
    dev = await startMeshreg('dev', { ...fast, MESHREG_TOKEN: TOKEN, MESHREG_AGENT_DATA_DIR: a.dir });
    agent = dev.addresses['agent'] ?? '';
    other = await startMeshreg('agent', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_AGENT_UPSTREAM: dev.addresses['session'] ?? '',
      MESHREG_NODE_NAME: 'other',
      MESHREG_AGENT_DATA_DIR: b.dir,
    });
    remote = other.addresses['agent'] ?? '';
  });

  after(async () => {
    for (const s of hungSockets) s.destroy();
    await Promise.all([dev.stop(), other.stop()]);
    target.close();
    hung.close();
    await Promise.all(cleanups.map((c) => c()));
  });

  test('checks - HTTP: 2xx passing, 429 warning, 500 critical; health travels to another agent', async () => {
    code = 200;
    await register({
      Name: 'web',
      ID: 'web-1',
      Port: targetPort,
      Check: { HTTP: `http://127.0.0.1:${targetPort}/health`, Interval: '100ms', Timeout: '1s' },
    });
    await waitFor('passing', async () => (await status('service:web-1')) === 'passing');
    await waitFor('passing at the other agent', async () => (await passingCount(remote, 'web')) === 1);
    code = 429;
    await waitFor('warning', async () => (await status('service:web-1')) === 'warning');
    await waitFor(
      'warning leaves ?passing at the other agent',
      async () => (await passingCount(remote, 'web')) === 0,
    );
    const local = await call('GET', `${agent}/v1/agent/health/service/name/web`);
    assert.equal(local.status, 429);
    code = 500;
    await waitFor('critical', async () => (await status('service:web-1')) === 'critical');
    assert.match((await checks())['service:web-1']?.Output ?? '', /500 Output: status 500/);
    assert.equal((await call('GET', `${agent}/v1/agent/health/service/id/web-1`)).status, 503);
    await waitFor('the check result reaches the other agent', async () => {
      const seen = (await call('GET', `${remote}/v1/health/service/web`)).body as {
        Checks: { CheckID: string; Status: string }[];
      }[];
      return seen[0]?.Checks.find((c) => c.CheckID === 'service:web-1')?.Status === 'critical';
    });
    code = 200;
  });

  test('checks - a process that accepts TCP but never answers HTTP turns critical and leaves the passing list', async () => {
    await register({
      Name: 'hung',
      ID: 'hung-1',
      Port: hungPort,
      Check: {
        HTTP: `http://127.0.0.1:${hungPort}/`,
        Interval: '100ms',
        Timeout: '300ms',
        Status: 'passing',
      },
    });
    assert.equal(await passingCount(agent, 'hung'), 1, 'starts passing as registered');
    await waitFor('critical by timeout', async () => (await status('service:hung-1')) === 'critical');
    assert.match((await checks())['service:hung-1']?.Output ?? '', /timed out/);
    await waitFor(
      'gone from ?passing at the other agent',
      async () => (await passingCount(remote, 'hung')) === 0,
    );
  });

  test('checks - TCP: a listening port is passing, a closed one critical', async () => {
    const srv = net.createServer((s) => s.end());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    await register({
      Name: 'db',
      ID: 'db-1',
      Port: port,
      Check: { TCP: `127.0.0.1:${port}`, Interval: '100ms', Timeout: '500ms' },
    });
    await waitFor('tcp passing', async () => (await status('service:db-1')) === 'passing');
    await new Promise<void>((r) => srv.close(() => r()));
    await waitFor('tcp critical', async () => (await status('service:db-1')) === 'critical');
  });

  test('checks - TTL: pass, warn, fail, update, and expiry; IDs arrive URL-encoded', async () => {
    await register({
      Name: 'job',
      ID: 'job-1',
      Checks: [{ TTL: '400ms' }, { Name: 'second', TTL: '10s', Status: 'passing' }],
    });
    const ids = Object.keys(await checks()).filter((k) => k.startsWith('service:job-1'));
    assert.deepEqual(ids.sort(), ['service:job-1:1', 'service:job-1:2'], 'generated IDs for several checks');
    assert.equal(
      await status('service:job-1:1'),
      'critical',
      'a new check starts critical unless Status says otherwise',
    );
    assert.equal(await status('service:job-1:2'), 'passing');
    const put = (verb: string, note = ''): Promise<unknown> =>
      call('PUT', `${agent}/v1/agent/check/${verb}/${encodeURIComponent('service:job-1:1')}${note}`);
    await put('pass', '?note=all%20good');
    assert.equal(await status('service:job-1:1'), 'passing');
    assert.equal((await checks())['service:job-1:1']?.Output, 'all good');
    await waitFor('ttl expired', async () => (await status('service:job-1:1')) === 'critical', 3000);
    assert.match((await checks())['service:job-1:1']?.Output ?? '', /TTL expired/);
    await put('warn');
    assert.equal(await status('service:job-1:1'), 'warning');
    await put('fail');
    assert.equal(await status('service:job-1:1'), 'critical');
    const upd = await call('PUT', `${agent}/v1/agent/check/update/${encodeURIComponent('service:job-1:1')}`, {
      Status: 'passing',
      Output: 'by update',
    });
    assert.equal(upd.status, 200);
    assert.equal(await status('service:job-1:1'), 'passing');
    const bad = await call('PUT', `${agent}/v1/agent/check/update/${encodeURIComponent('service:job-1:1')}`, {
      Status: 'fine',
    });
    assert.equal(bad.status, 400);
    assert.equal((await call('PUT', `${agent}/v1/agent/check/pass/no-such-check`)).status, 404);
    assert.equal(
      (await call('PUT', `${agent}/v1/agent/check/pass/service:web-1`)).status,
      400,
      'not a TTL check',
    );
  });

  test('checks - thresholds: warning after FailuresBeforeWarning, critical after FailuresBeforeCritical, passing after SuccessBeforePassing', async () => {
    code = 200;
    await register({
      Name: 'flaky',
      ID: 'flaky-1',
      Check: {
        HTTP: `http://127.0.0.1:${targetPort}/`,
        Interval: '150ms',
        Timeout: '1s',
        Status: 'passing',
        SuccessBeforePassing: 2,
        FailuresBeforeWarning: 1,
        FailuresBeforeCritical: 3,
      },
    });
    const transitions: string[] = [];
    let last = 'passing';
    const record = async (): Promise<void> => {
      const s = (await status('service:flaky-1')) ?? '';
      if (s !== last) transitions.push(s);
      last = s;
    };
    // Consul's counters start at their thresholds (a new check's first result applies at once), so
    // the thresholds show only after a first success: wait for one.
    await waitFor('a first probe', async () =>
      /: 200 /.test((await checks())['service:flaky-1']?.Output ?? ''),
    );
    code = 500;
    await waitFor('critical', async () => {
      await record();
      return last === 'critical';
    });
    code = 200;
    const backAt = Date.now();
    await waitFor('passing again', async () => {
      await record();
      return last === 'passing';
    });
    assert.deepEqual(transitions, ['warning', 'critical', 'passing']);
    assert.ok(Date.now() - backAt >= 150, 'passing needed two successes, not one');
  });

  test('checks - invalid definitions get a 400 naming the field', async () => {
    const r = await call('PUT', `${agent}/v1/agent/service/register`, {
      Name: 'x',
      Checks: [{ HTTP: 'http://127.0.0.1:1/' }, { TTL: 'soon' }, { Script: 'rm -rf /' }],
    });
    assert.equal(r.status, 400);
    const paths = (r.body as { error: { fields: { path: string }[] } }).error.fields.map((f) => f.path);
    assert.ok(paths.includes('Checks[0].Interval'), paths.join(','));
    assert.ok(paths.includes('Checks[1].TTL'), paths.join(','));
    assert.ok(
      paths.some((p) => p.startsWith('Checks[2]')),
      paths.join(','),
    );
  });

  test('checks - DeregisterCriticalServiceAfter removes a service that stays critical', async () => {
    await register({
      Name: 'doomed',
      ID: 'doomed-1',
      Check: { TTL: '200ms', DeregisterCriticalServiceAfter: '300ms' },
    });
    await waitFor(
      'reaped',
      async () =>
        ((await call('GET', `${agent}/v1/agent/services`)).body as Record<string, unknown>)['doomed-1'] ===
        undefined,
      5000,
    );
    assert.equal((await checks())['service:doomed-1'], undefined, 'its checks went with it');
  });
});

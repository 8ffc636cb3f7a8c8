/**
 * Careless Consul input through a real `meshreg dev`: check durations no timer can honour, IDs no URL
 * can name again, loose index syntax, and a `Meta` key `__proto__`. Each is answered as documented,
 * the process stays alive and nothing it already served changes.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { http } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

let dev: Started;
let cleanup: () => Promise<void>;
let agent = '';

interface ErrorBody {
  readonly error: { code: string; fields?: { path: string; message: string }[] };
}

before(async () => {
  const tmp = await tempDir();
  cleanup = tmp.cleanup;
  dev = await startMeshreg('dev', { MESHREG_TOKEN: 'consul-hostile', MESHREG_AGENT_DATA_DIR: tmp.dir });
  agent = dev.addresses['agent'] ?? '';
  const r = await http('PUT', `${agent}/v1/agent/service/register`, { Name: 'keep', ID: 'keep-1', Port: 1 });
  assert.equal(r.status, 200);
});

after(async () => {
  await dev.stop();
  await cleanup();
});

async function stillServing(): Promise<void> {
  assert.equal(dev.child.exitCode, null, 'the process is alive');
  const r = await http('GET', `${agent}/v1/agent/service/keep-1`);
  assert.equal(r.status, 200);
}

/** The fields a 400 names. */
function fieldsOf(body: unknown): string[] {
  return ((body as ErrorBody).error.fields ?? []).map((f) => f.path);
}

test('consul edge - check durations past their bounds get 400 naming the field, and no check runs', async () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ HTTP: 'http://127.0.0.1:1/', Interval: '1000000h' }, 'Check.Interval'],
    [{ TTL: '1000000h' }, 'Check.TTL'],
    [{ TCP: '127.0.0.1:1', Interval: '10s', Timeout: '1000000h' }, 'Check.Timeout'],
    [{ TTL: '10s', DeregisterCriticalServiceAfter: '1000000h' }, 'Check.DeregisterCriticalServiceAfter'],
  ];
  for (const [check, field] of cases) {
    const r = await http('PUT', `${agent}/v1/agent/service/register`, {
      Name: 'slow',
      ID: 'slow-1',
      Check: check,
    });
    assert.equal(r.status, 400, r.text);
    assert.deepEqual(fieldsOf(r.body), [field]);
  }
  const standalone = await http('PUT', `${agent}/v1/agent/check/register`, { Name: 'c', TTL: '1000000h' });
  assert.equal(standalone.status, 400, standalone.text);
  const checks = await http('GET', `${agent}/v1/agent/checks`);
  assert.deepEqual(checks.body, {}, 'none of them was registered');
  assert.ok(!dev.logs().includes('TimeoutOverflowWarning'));
  await stillServing();
});

test('consul edge - IDs no URL can name again are refused; odd but addressable ones work end to end', async () => {
  for (const id of ['.', '..', 'a\ud800b']) {
    const body = `{"Name":"odd","ID":${JSON.stringify(id).replace('\ud800', '\\ud800')}}`;
    const r = await http('PUT', `${agent}/v1/agent/service/register`, body);
    assert.equal(r.status, 400, `${JSON.stringify(id)}: ${r.text}`);
    assert.deepEqual(fieldsOf(r.body), ['ID']);
  }
  for (const id of ['...', 'web 😀 1', '__proto__']) {
    const put = await http('PUT', `${agent}/v1/agent/service/register`, { Name: 'odd', ID: id });
    assert.equal(put.status, 200, put.text);
    const got = await http('GET', `${agent}/v1/agent/service/${encodeURIComponent(id)}`);
    assert.equal(got.status, 200, `${id}: ${got.text}`);
    const all = await http('GET', `${agent}/v1/agent/services`);
    assert.ok(Object.prototype.hasOwnProperty.call(all.body, id), `${id} listed by /v1/agent/services`);
    const del = await http('PUT', `${agent}/v1/agent/service/deregister/${encodeURIComponent(id)}`);
    assert.equal(del.status, 200);
    assert.equal((await http('GET', `${agent}/v1/agent/service/${encodeURIComponent(id)}`)).status, 404);
  }
  await stillServing();
});

test('consul edge - a Meta key __proto__ travels through the control plane as data', async () => {
  const body = '{"Name":"proto-meta","ID":"pm-1","Port":2,"Meta":{"__proto__":"kept","a":"b"}}';
  assert.equal((await http('PUT', `${agent}/v1/agent/service/register`, body)).status, 200);
  const entries = await waitFor('the instance pushed back', async () => {
    const r = await http('GET', `${agent}/v1/health/service/proto-meta`);
    return Array.isArray(r.body) && r.body.length === 1 ? r : undefined;
  });
  assert.match(entries.text, /"Meta":\{"__proto__":"kept","a":"b"\}/);
  const own = await http('GET', `${agent}/v1/agent/service/pm-1`);
  assert.match(own.text, /"Meta":\{"__proto__":"kept","a":"b"\}/);
});

test('consul edge - a blocking index takes decimal digits only', async () => {
  for (const index of ['0x10', '%2B5', '1e3', '-1']) {
    const r = await http('GET', `${agent}/v1/health/service/keep?index=${index}`);
    assert.equal(r.status, 400, index);
    assert.deepEqual(fieldsOf(r.body), ['index']);
  }
  assert.equal((await http('GET', `${agent}/v1/health/service/keep?index=1&wait=10ms`)).status, 200);
  await stillServing();
});

/**
 * Attack suite, health checks (real `meshreg dev` with `MESHREG_CHECK_ALLOW`): an HTTP check cannot
 * be turned into a proxy by a redirect to another port or another host (CVE-2022-29153), a redirect
 * loop and a huge body are bounded, a target outside the allowed CIDRs is refused at registration,
 * and checks that run commands (Consul's script checks: remote code execution) do not exist. The
 * registry is listed before and after each refused registration to show nothing changed.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { http as call } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

interface CheckJson {
  Status: string;
  Output: string;
}
interface ErrorBody {
  error?: { code?: string; fields?: { path: string }[] };
}

/** A server on `host:port` (port 0: any) that counts its requests and answers with `handle`. */
async function server(
  host: string,
  port: number,
  handle: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<{ port: number; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const s = http.createServer((req, res) => {
    hits++;
    handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, host, resolve);
  });
  return {
    port: (s.address() as net.AddressInfo).port,
    hits: () => hits,
    close: () =>
      new Promise<void>((r) => {
        s.closeAllConnections();
        s.close(() => r());
      }),
  };
}

/** Writes `totalBytes` of body, respecting backpressure, until done or the client goes away. */
function stream(res: http.ServerResponse, totalBytes: number, onEnd: (finished: boolean) => void): void {
  const chunk = Buffer.alloc(64 * 1024, 'a');
  let sent = 0;
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.once('close', () => onEnd(res.writableFinished));
  const pump = (): void => {
    while (sent < totalBytes && !res.destroyed) {
      sent += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  pump();
}

describe('security - health checks', () => {
  let dev: Started;
  let agent = '';
  let bigFinished: boolean | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  let main: Awaited<ReturnType<typeof server>>;
  let otherPort: Awaited<ReturnType<typeof server>>;
  let otherHost: Awaited<ReturnType<typeof server>> | undefined;

  const checks = async (): Promise<Record<string, CheckJson>> =>
    (await call('GET', `${agent}/v1/agent/checks`)).body as Record<string, CheckJson>;
  const snapshot = async (): Promise<string> => {
    const services = (await call('GET', `${agent}/v1/agent/services`)).body;
    const ids = Object.keys(await checks()).sort();
    return JSON.stringify({ services, ids });
  };
  const register = (body: unknown): Promise<{ status: number; body: unknown; text: string }> =>
    call('PUT', `${agent}/v1/agent/service/register`, body);
  const settled = (id: string, status: string): Promise<CheckJson> =>
    waitFor(`check ${id} ${status}`, async () => {
      const c = (await checks())[id];
      return c?.Status === status && c.Output !== '' ? c : undefined;
    });

  before(async () => {
    main = await server('127.0.0.1', 0, (req, res) => {
      const to = (location: string): void => {
        res.writeHead(302, { location }).end();
      };
      if (req.url === '/to-port') to(`http://127.0.0.1:${otherPort.port}/landed`);
      else if (req.url === '/to-host') to(`http://127.0.0.2:${main.port}/landed`);
      else if (req.url === '/same') to('/ok');
      else if (req.url === '/loop') to('/loop');
      else if (req.url === '/big')
        stream(res, 64 * 1024 * 1024, (finished) => {
          bigFinished = finished;
        });
      else res.writeHead(200).end('fine');
    });
    cleanups.push(() => main.close());
    otherPort = await server('127.0.0.1', 0, (_req, res) => res.writeHead(200).end('proxied!'));
    cleanups.push(() => otherPort.close());
    // Another host on the same port: 127.0.0.2 (loopback on Linux); skipped where it cannot bind.
    otherHost = await server('127.0.0.2', main.port, (_req, res) => res.writeHead(200).end('proxied!')).catch(
      () => undefined,
    );
    if (otherHost !== undefined) cleanups.push(() => otherHost?.close() ?? Promise.resolve());
    const tmp = await tempDir();
    cleanups.push(tmp.cleanup);
    dev = await startMeshreg('dev', {
      MESHREG_AGENT_DATA_DIR: tmp.dir,
      MESHREG_CHECK_MIN_INTERVAL_MS: '50',
      MESHREG_CHECK_ALLOW: '192.0.2.0/24',
    });
    agent = dev.addresses['agent'] ?? '';
  });

  after(async () => {
    await dev?.stop();
    for (const c of cleanups.reverse()) await c();
  });

  test('redirects - a check redirected to another port is critical with a reason; the other port saw nothing', async () => {
    const url = `http://127.0.0.1:${main.port}/to-port`;
    assert.equal(
      (await register({ Name: 'r-port', Check: { CheckID: 'r-port', HTTP: url, Interval: '100ms' } })).status,
      200,
    );
    const c = await settled('r-port', 'critical');
    assert.match(c.Output, /another origin/);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(otherPort.hits(), 0);
  });

  test('redirects - a check redirected to another host on the same port is not followed', async (t) => {
    if (otherHost === undefined) {
      t.diagnostic('127.0.0.2 cannot be bound here: checking the refusal without a listener there');
    }
    const url = `http://127.0.0.1:${main.port}/to-host`;
    assert.equal(
      (await register({ Name: 'r-host', Check: { CheckID: 'r-host', HTTP: url, Interval: '100ms' } })).status,
      200,
    );
    const c = await settled('r-host', 'critical');
    assert.match(c.Output, /another origin \(http:\/\/127\.0\.0\.2:/);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(otherHost?.hits() ?? 0, 0);
  });

  test('redirects - same-origin redirects are followed, a loop is cut, DisableRedirects follows none', async () => {
    const base = `http://127.0.0.1:${main.port}`;
    const reg = (id: string, path: string, extra: object = {}): Promise<unknown> =>
      register({ Name: id, Check: { CheckID: id, HTTP: `${base}${path}`, Interval: '100ms', ...extra } });
    await reg('r-same', '/same');
    await reg('r-loop', '/loop');
    await reg('r-none', '/same', { DisableRedirects: true });
    assert.match((await settled('r-same', 'passing')).Output, /200 Output: fine/);
    assert.match((await settled('r-loop', 'critical')).Output, /more than 3 redirects/);
    assert.match((await settled('r-none', 'critical')).Output, /redirects are not followed/);
  });

  test('body - a check reads a bounded part of a huge body and keeps 4 KiB of output', async () => {
    const url = `http://127.0.0.1:${main.port}/big`;
    await register({ Name: 'big', Check: { CheckID: 'big', HTTP: url, Interval: '200ms' } });
    const c = await settled('big', 'passing');
    assert.ok(c.Output.length <= 4096 + 200, `output of ${c.Output.length} chars`);
    await waitFor('the big response closed', () => bigFinished !== undefined);
    assert.equal(bigFinished, false, 'the agent stopped reading: the 64 MiB body was never sent whole');
  });

  test('allow list - a target outside loopback, this host and MESHREG_CHECK_ALLOW is refused at registration', async () => {
    const before = await snapshot();
    const cases: { body: unknown; path: string; field: string }[] = [
      {
        body: { Name: 'x', Check: { HTTP: 'http://198.51.100.7/', Interval: '1s' } },
        path: 'service',
        field: 'Check.HTTP',
      },
      {
        body: { Name: 'x', Check: { HTTP: 'http://169.254.169.254/latest/meta-data/', Interval: '1s' } },
        path: 'service',
        field: 'Check.HTTP',
      },
      {
        body: { Name: 'x', Check: { HTTP: 'http://[::ffff:169.254.169.254]/', Interval: '1s' } },
        path: 'service',
        field: 'Check.HTTP',
      },
      {
        body: { Name: 'x', Checks: [{ TTL: '1m' }, { TCP: '10.0.0.1:22', Interval: '1s' }] },
        path: 'service',
        field: 'Checks[1].TCP',
      },
      {
        body: { Name: 'node-probe', HTTP: 'http://198.51.100.7/', Interval: '1s' },
        path: 'check',
        field: 'HTTP',
      },
    ];
    for (const c of cases) {
      const url = c.path === 'service' ? '/v1/agent/service/register' : '/v1/agent/check/register';
      const r = await call('PUT', `${agent}${url}`, c.body);
      assert.equal(r.status, 400, r.text);
      const err = (r.body as ErrorBody).error;
      assert.equal(err?.code, 'invalid_argument');
      assert.ok(
        err?.fields?.some((f) => f.path === c.field),
        `${c.field} in ${r.text}`,
      );
    }
    // Inside the list, and on loopback: accepted.
    const ok = await register({
      Name: 'allowed',
      Check: { TCP: '192.0.2.1:80', Interval: '1h', Timeout: '100ms' },
    });
    assert.equal(ok.status, 200, ok.text);
    await call('PUT', `${agent}/v1/agent/service/deregister/allowed`);
    assert.equal(await snapshot(), before);
  });

  test('no exec checks - Script, Args, DockerContainerID and Shell are refused with 400 naming the field', async () => {
    const before = await snapshot();
    for (const [field, check] of [
      ['script', { Script: 'touch /tmp/pwned', Interval: '1s' }],
      ['args', { Args: ['/bin/sh', '-c', 'id'], Interval: '1s' }],
      ['dockercontainerid', { DockerContainerID: 'abc', Args: ['id'], Interval: '1s' }],
      ['shell', { Shell: '/bin/sh', HTTP: 'http://127.0.0.1/', Interval: '1s' }],
    ] as const) {
      const r = await register({ Name: 'exec', Check: check });
      assert.equal(r.status, 400, r.text);
      const paths = ((r.body as ErrorBody).error?.fields ?? []).map((f) => f.path);
      assert.ok(paths.includes(`Check.${field}`), `${field}: ${r.text}`);
      const alone = await call('PUT', `${agent}/v1/agent/check/register`, { Name: 'exec', ...check });
      assert.equal(alone.status, 400);
    }
    assert.equal(await snapshot(), before);
  });
});

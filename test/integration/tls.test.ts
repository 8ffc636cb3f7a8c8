/**
 * TLS on every link, with real processes and real certificates made by `openssl` in the test: a
 * `meshreg server` whose roles all serve TLS and require client certificates (mTLS), agents that
 * dial it over `wss://`, and the refusals: a wrong CA, an expired certificate, a wrong host name, a
 * plaintext client, a client without a certificate. Where `openssl` is missing the test says so and
 * checks only what it can without certificates.
 */
import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { createLogger } from '../../proto/runtime/log.js';
import { readTlsConfig } from '../../proto/runtime/tls-config.js';
import { TlsSource } from '../../proto/runtime/tls.js';
import { parseMetrics, value } from '../support/admin.js';
import { makeTestCerts, opensslAvailable, tlsEnv, type CertPair, type TestCerts } from '../support/certs.js';
import { ctl } from '../support/ctl.js';
import { http } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'tls-test-token';
const ADMIN = 'tls-test-admin';

/** What an https GET came to: a status and body, or the error the client saw. */
type Got = { readonly status: number; readonly body: string } | { readonly error: string };

function httpsGet(url: string, opts: https.RequestOptions): Promise<Got> {
  return new Promise((resolve) => {
    const req = https.get(url, { ...opts, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      resolve({ error: `${err.code ?? ''} ${err.message}` });
    });
  });
}

const pem = (file: string): Promise<Buffer> => readFile(file);

async function clientTls(ca: string, pair?: CertPair): Promise<https.RequestOptions> {
  return {
    ca: await pem(ca),
    ...(pair === undefined ? {} : { cert: await pem(pair.cert), key: await pem(pair.key) }),
  };
}

/** `wss://host:port/v1/...` → `https://host:port` */
const httpsBase = (linkUrl: string): string => linkUrl.replace('wss://', 'https://').replace(/\/v1\/.*$/, '');

describe('tls', async () => {
  const haveOpenssl = await opensslAvailable();
  let certs: TestCerts;
  let server: Started;
  const agents: Started[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];

  const startAgent = async (name: string, env: Record<string, string>): Promise<Started> => {
    const { dir, cleanup } = await tempDir();
    cleanups.push(cleanup);
    const a = await startMeshreg('agent', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_NODE_NAME: name,
      MESHREG_AGENT_DATA_DIR: dir,
      MESHREG_AGENT_UPSTREAM: server.addresses['session'] ?? '',
      ...env,
    });
    agents.push(a);
    return a;
  };
  const upstreamOf = async (a: Started): Promise<{ state: string }> =>
    (
      (await http('GET', `${a.addresses['agent'] ?? ''}/v1/meshreg/health`)).body as {
        upstream: { state: string };
      }
    ).upstream;

  before(async () => {
    if (!haveOpenssl) return;
    certs = await makeTestCerts();
    server = await startMeshreg('server', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_ADMIN_TOKEN: ADMIN,
      ...tlsEnv(certs.node, certs.ca),
    });
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await server?.stop();
    await Promise.all(cleanups.map((c) => c()));
    await certs?.cleanup();
  });

  test('tls - every role serves wss:// and registrations flow end to end over it', async (t) => {
    if (!haveOpenssl) {
      t.diagnostic('openssl is not on PATH: no certificates can be made, TLS end to end not run');
      return;
    }
    for (const role of ['meta', 'data', 'session'])
      assert.match(server.addresses[role] ?? '', /^wss:\/\/127\.0\.0\.1:/);
    const env = tlsEnv(certs.agent, certs.ca);
    const [a, b] = await Promise.all([startAgent('tls-a', env), startAgent('tls-b', env)]);
    for (const agent of [a, b])
      await waitFor('agent linked over wss', async () => (await upstreamOf(agent)).state === 'open');
    const reg = await http('PUT', `${a.addresses['agent'] ?? ''}/v1/agent/service/register`, {
      Name: 'tls-web',
      ID: 'tls-web-1',
      Port: 8080,
    });
    assert.equal(reg.status, 200);
    const seen = await waitFor(
      'registration read back at the other agent',
      async () => {
        const r = await http('GET', `${b.addresses['agent'] ?? ''}/v1/health/service/tls-web`);
        const list = r.body as { Service: { ID: string } }[];
        return list.length === 1 ? list : undefined;
      },
      10_000,
    );
    assert.equal(seen[0]?.Service.ID, 'tls-web-1');
    // Every TLS connection of the session port is past its handshake: the two agents and this scrape.
    const metrics = await httpsGet(
      `${httpsBase(server.addresses['session'] ?? '')}/metrics`,
      await clientTls(certs.ca, certs.agent),
    );
    assert.ok('body' in metrics, JSON.stringify(metrics));
    const m = parseMetrics(metrics.body);
    assert.equal(value(m, 'meshreg_link_handshakes_pending', { role: 'session' }), 0);
    assert.ok((value(m, 'meshreg_link_connections', { role: 'session' }) ?? 0) >= 3);
  });

  test('tls - meshreg dev runs every link over TLS, its own agent included', async (t) => {
    if (!haveOpenssl) return t.diagnostic('openssl is not on PATH: skipped meshreg dev over TLS');
    const { dir, cleanup } = await tempDir();
    cleanups.push(cleanup);
    const dev = await startMeshreg('dev', { MESHREG_AGENT_DATA_DIR: dir, ...tlsEnv(certs.node, certs.ca) });
    t.after(() => dev.stop());
    for (const role of ['meta', 'data', 'session']) assert.match(dev.addresses[role] ?? '', /^wss:\/\//);
    await waitFor('the dev agent linked over wss', async () => (await upstreamOf(dev)).state === 'open');
    assert.doesNotMatch(dev.logs(), /cannot connect|link could not connect|TLS client refused/);
  });

  test('tls - a plaintext client on a TLS port is refused (HTTP and WebSocket)', async (t) => {
    if (!haveOpenssl) return t.diagnostic('openssl is not on PATH: skipped the plaintext refusal');
    const base = httpsBase(server.addresses['meta'] ?? '');
    await assert.rejects(http('GET', `${base.replace('https://', 'http://')}/health`));
    const plainWs = (server.addresses['session'] ?? '').replace('wss://', 'ws://');
    const closed = await new Promise<string>((resolve) => {
      const ws = new WebSocket(plainWs);
      ws.on('open', () => resolve('open'));
      ws.on('error', (err) => resolve(`error ${err.message}`));
    });
    assert.match(closed, /^error /, 'a ws:// client never gets a WebSocket');
    // And a raw TCP client writing an HTTP request gets no HTTP answer, only a TLS alert or a close.
    const addr = new URL(base);
    const reply = await new Promise<string>((resolve) => {
      const s = net.connect(Number(addr.port), addr.hostname, () =>
        s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'),
      );
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      s.on('close', () => resolve(got));
      s.on('error', () => undefined);
      s.setTimeout(5000, () => s.destroy());
    });
    assert.doesNotMatch(reply, /HTTP\/1\.1 200/);
  });

  test('tls - mTLS: a client without a certificate is refused, with one it is served', async (t) => {
    if (!haveOpenssl) return t.diagnostic('openssl is not on PATH: skipped mTLS');
    const health = `${httpsBase(server.addresses['meta'] ?? '')}/health`;
    const without = await httpsGet(health, await clientTls(certs.ca));
    assert.ok('error' in without, `refused without a client certificate: ${JSON.stringify(without)}`);
    const foreign = await httpsGet(health, await clientTls(certs.ca, certs.foreign));
    assert.ok('error' in foreign, 'refused with a certificate of another CA');
    const withCert = await httpsGet(health, await clientTls(certs.ca, certs.agent));
    assert.ok('status' in withCert && withCert.status === 200, JSON.stringify(withCert));
  });

  test('tls - with MESHREG_TLS_PROBES_WITHOUT_CLIENT_CERT a client without a certificate reads the probe paths only', async (t) => {
    if (!haveOpenssl) return t.diagnostic('openssl is not on PATH: skipped probes without a certificate');
    const probed = await startMeshreg('server', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_ADMIN_TOKEN: ADMIN,
      MESHREG_ROLES: 'meta',
      MESHREG_TLS_PROBES_WITHOUT_CLIENT_CERT: 'true',
      ...tlsEnv(certs.node, certs.ca),
    });
    t.after(() => probed.stop());
    const base = httpsBase(probed.addresses['meta'] ?? '');
    const anonymous = await clientTls(certs.ca);
    for (const p of ['/live', '/health', '/metrics']) {
      const got = await httpsGet(`${base}${p}`, anonymous);
      assert.ok('status' in got && got.status === 200, `${p} without a certificate: ${JSON.stringify(got)}`);
    }
    // Everything else needs the certificate, whatever the token: the admin API and the links.
    const admin = await httpsGet(`${base}/admin/members`, {
      ...anonymous,
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    assert.ok(
      'status' in admin && admin.status === 403 && admin.body.includes('client certificate'),
      JSON.stringify(admin),
    );
    const upgrade = await new Promise<string>((resolve) => {
      const ws = new WebSocket(probed.addresses['meta'] ?? '', { ca: anonymous.ca as Buffer });
      ws.on('open', () => {
        ws.close();
        resolve('open');
      });
      ws.on('unexpected-response', (_req, res) => {
        resolve(`refused ${String(res.statusCode)}`);
      });
      ws.on('error', (err) => {
        resolve(`error ${err.message}`);
      });
    });
    assert.match(upgrade, /^(refused 403|error )/, upgrade);
    const withCert = await httpsGet(`${base}/admin/members`, {
      ...(await clientTls(certs.ca, certs.agent)),
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    assert.ok('status' in withCert && withCert.status === 200, JSON.stringify(withCert));
  });

  test('tls - an agent trusting another CA refuses the session and logs why', async (t) => {
    if (!haveOpenssl) return t.diagnostic('openssl is not on PATH: skipped wrong CA');
    const a = await startAgent('tls-wrong-ca', tlsEnv(certs.agent, certs.otherCa));
    await waitFor(
      'the agent says why',
      () => /cannot connect to session.*(self-signed|verify|issuer)/i.test(a.logs()),
      10_000,
    );
    assert.notEqual((await upstreamOf(a)).state, 'open');
  });

  test('tls - the session refuses an agent whose certificate expired, and the agent logs why', async (t) => {
    if (!haveOpenssl) return t.diagnostic('openssl is not on PATH: skipped expired client certificate');
    const a = await startAgent('tls-expired', tlsEnv(certs.expired, certs.ca));
    await waitFor(
      'the session says why',
      () => /TLS client refused.*CERT_HAS_EXPIRED/.test(server.logs()),
      10_000,
    );
    // Under TLS 1.3 the client's handshake ends before the server checks its certificate: the
    // agent sees the connection closed, and its log points at the session's.
    await waitFor(
      'the agent says it was refused',
      () => /cannot connect to session.*hint/.test(a.logs()),
      10_000,
    );
    assert.notEqual((await upstreamOf(a)).state, 'open');
  });

  test('tls - an agent refuses a session with an expired certificate or one for another host', async (t) => {
    if (!haveOpenssl) return t.diagnostic('openssl is not on PATH: skipped server certificate checks');
    for (const [pair, why] of [
      [certs.expired, /expired/i],
      [certs.wrongHost, /altnames|does not match|hostname/i],
    ] as const) {
      // A TLS server presenting the bad certificate: the agent must stop at its own check.
      const fake = tls.createServer({ cert: await pem(pair.cert), key: await pem(pair.key) }, (s) =>
        s.destroy(),
      );
      fake.on('tlsClientError', () => undefined);
      await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
      t.after(() => fake.close());
      const port = (fake.address() as net.AddressInfo).port;
      const a = await startAgent(`tls-bad-server-${String(port)}`, {
        ...tlsEnv(certs.agent, certs.ca),
        MESHREG_AGENT_UPSTREAM: `wss://127.0.0.1:${String(port)}/v1/agent-link`,
      });
      await waitFor(
        `the agent refuses (${String(why)})`,
        () => new RegExp(`cannot connect to session.*${why.source}`, 'i').test(a.logs()),
        10_000,
      );
    }
  });

  test('tls - meshreg ctl talks to meta over https with the CA and its certificate', async (t) => {
    if (!haveOpenssl) return t.diagnostic('openssl is not on PATH: skipped ctl over https');
    const env = {
      ...tlsEnv(certs.agent, certs.ca),
      MESHREG_ADMIN_TOKEN: ADMIN,
      MESHREG_CTL_META: server.addresses['meta'] ?? '',
    };
    const run = await ctl(['members', '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /wss:\/\/127\.0\.0\.1/);
    const plain = await ctl(['members'], {
      ...env,
      MESHREG_CTL_META: httpsBase(server.addresses['meta'] ?? '').replace('https', 'http'),
    });
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /plain text while TLS is configured/);
  });

  test('tls - refuses to start with a half, unreadable or mismatched configuration, naming the variables', async (t) => {
    if (!haveOpenssl) return t.diagnostic('openssl is not on PATH: skipped start refusals');
    const cases: [Record<string, string>, RegExp][] = [
      [
        { MESHREG_TLS_CERT_FILE: certs.node.cert },
        /MESHREG_TLS_CERT_FILE is set but MESHREG_TLS_KEY_FILE is not/,
      ],
      [{ MESHREG_TLS_CA_FILE: certs.ca }, /MESHREG_TLS_CA_FILE is set without MESHREG_TLS_CERT_FILE/],
      [
        tlsEnv({ cert: certs.node.cert, key: certs.agent.key }, undefined),
        /MESHREG_TLS_CERT_FILE and MESHREG_TLS_KEY_FILE do not match/,
      ],
      [
        tlsEnv({ cert: path.join(certs.dir, 'missing.pem'), key: certs.node.key }, undefined),
        /MESHREG_TLS_CERT_FILE: cannot read/,
      ],
      [
        { ...tlsEnv(certs.node, certs.ca), MESHREG_META_URL: 'ws://127.0.0.1:1/v1/meta-link' },
        /MESHREG_META_URL: .* plain text/,
      ],
    ];
    for (const [env, why] of cases) {
      await assert.rejects(startMeshreg('server', { MESHREG_TOKEN: TOKEN, ...env }), (err: Error) => {
        assert.match(err.message, why);
        return true;
      });
    }
  });

  test('tls - certificates are reloaded from their files without a restart (file change, SIGHUP)', async (t) => {
    if (!haveOpenssl) return t.diagnostic('openssl is not on PATH: skipped reload');
    const { dir, cleanup } = await tempDir();
    t.after(cleanup);
    const live = { cert: path.join(dir, 'live.pem'), key: path.join(dir, 'live.key') };
    const put = async (p: CertPair): Promise<void> => {
      await copyFile(p.key, live.key);
      await copyFile(p.cert, live.cert);
    };
    await put(certs.node);
    const source = TlsSource.load(
      readTlsConfig({ ...tlsEnv(live, certs.ca), MESHREG_TLS_RELOAD_MS: '50' }, { server: true }),
    );
    assert.ok(source.ok && source.value !== undefined);
    const tlsSource = source.value;
    const server2 = https.createServer(tlsSource.serverOptions(), (_req, res) => res.end('ok'));
    t.after(() => server2.close());
    tlsSource.serve(server2);
    const lines: string[] = [];
    tlsSource.watch(createLogger('info', {}, (line) => lines.push(line)));
    t.after(() => tlsSource.close());
    await new Promise<void>((r) => server2.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${String((server2.address() as net.AddressInfo).port)}/`;
    const opts = await clientTls(certs.ca, certs.agent);
    const first = await httpsGet(url, opts);
    assert.ok('status' in first, JSON.stringify(first));
    // A file change: the server now presents the certificate for another host, which the client refuses.
    await put(certs.wrongHost);
    await waitFor('new certificate served', async () => {
      const g = await httpsGet(url, opts);
      return 'error' in g && /altnames|does not match/i.test(g.error);
    });
    // A broken file is refused and the previous certificate stays in use.
    await writeFile(live.cert, 'not a certificate');
    process.kill(process.pid, 'SIGHUP');
    await waitFor('refusal logged', () => lines.some((l) => /not reloaded/.test(l)));
    assert.ok('error' in (await httpsGet(url, opts)), 'still the wrong-host certificate');
    // SIGHUP with the good files back.
    await put(certs.node);
    process.kill(process.pid, 'SIGHUP');
    await waitFor('good certificate back', async () => 'status' in (await httpsGet(url, opts)));
    assert.ok(lines.filter((l) => /TLS certificates reloaded/.test(l)).length >= 2, lines.join('\n'));
  });
});

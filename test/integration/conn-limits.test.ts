/**
 * Connection limits of a role port with a real `meshreg server`: one address over its bound is
 * refused at once while another address is served, and a flood of idle half-open sockets never
 * holds more than the pending-handshake bound while connected agents and open connections keep
 * being served; the idle ones are cut when their handshake time runs out.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Client } from 'undici';
import { parseMetrics, value } from '../support/admin.js';
import { http as httpJson } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'conn-limits-token';

/** An idle TCP socket from `localAddress`, and whether the server closed it. */
interface Idle {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  isClosed(): boolean;
}

async function openIdle(port: number, localAddress = '127.0.0.1'): Promise<Idle> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  let closed = false;
  const done = new Promise<void>((resolve) => {
    socket.once('close', () => {
      closed = true;
      resolve();
    });
  });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => {
    socket.once('connect', resolve);
    socket.once('close', resolve);
  });
  return { socket, closed: done, isClosed: () => closed };
}

/** GET `/health` on a fresh connection from `localAddress`; the status, or the error's code. */
function healthFrom(port: number, localAddress: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: '/health', localAddress, agent: false, timeout: 3000 },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      resolve(err.code ?? err.message);
    });
  });
}

const portOf = (url: string): number => Number(new URL(url).port);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Closed sockets among `idle`, after `ms` for the server to act. */
async function closedAfter(idle: readonly Idle[], ms: number): Promise<number> {
  await sleep(ms);
  return idle.filter((i) => i.isClosed()).length;
}

describe('conn-limits', () => {
  const started: Started[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];
  const idle: Idle[] = [];
  after(async () => {
    for (const i of idle) i.socket.destroy();
    await Promise.all(started.map((s) => s.stop()));
    await Promise.all(cleanups.map((c) => c()));
  });

  test('conn-limits - an address over its bound is refused at once while another address is served', async (t) => {
    const server = await startMeshreg('server', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_MAX_CONNECTIONS_PER_IP: '6',
      MESHREG_LINK_HELLO_TIMEOUT_MS: '20000',
    });
    started.push(server);
    const port = portOf(server.addresses['session'] ?? '');
    const mine = await Promise.all(Array.from({ length: 6 }, () => openIdle(port)));
    idle.push(...mine);
    assert.equal(await closedAfter(mine, 300), 0, 'six sockets are within the bound');
    const over = await openIdle(port);
    idle.push(over);
    await Promise.race([over.closed, sleep(2000)]);
    assert.ok(over.isClosed(), 'the seventh socket of 127.0.0.1 is closed at once');
    assert.match(String(await healthFrom(port, '127.0.0.1')), /^(ECONNRESET|EPIPE)$/, 'refused, unanswered');
    const other = await healthFrom(port, '127.0.0.2');
    if (other === 'EADDRNOTAVAIL') {
      t.diagnostic('127.0.0.2 is not usable as a source address here: a second address was not tried');
    } else {
      assert.equal(other, 200, 'another address is served meanwhile');
    }
    assert.match(server.logs(), /"msg":"connection refused".*"reason":"per_ip"/);
    assert.doesNotMatch(server.logs(), /without TLS/, 'no plain-text warning on loopback');
    // The place is given back when a socket closes.
    mine[0]?.socket.destroy();
    await waitFor('127.0.0.1 served again', async () => (await healthFrom(port, '127.0.0.1')) === 200);
    const m = parseMetrics((await httpJson('GET', `http://127.0.0.1:${String(port)}/metrics`)).text);
    assert.ok(
      (value(m, 'meshreg_link_connections_refused_total', { role: 'session', reason: 'per_ip' }) ?? 0) >= 2,
    );
  });

  describe('a flood of idle sockets', () => {
    let server: Started;
    let agent: Started;
    let keepAlive: Client;
    let connects = 0;

    before(async () => {
      server = await startMeshreg('server', {
        MESHREG_TOKEN: TOKEN,
        MESHREG_MAX_PENDING_HANDSHAKES: '5',
        MESHREG_LINK_HELLO_TIMEOUT_MS: '1500',
      });
      started.push(server);
      const { dir, cleanup } = await tempDir();
      cleanups.push(cleanup);
      agent = await startMeshreg('agent', {
        MESHREG_TOKEN: TOKEN,
        MESHREG_NODE_NAME: 'flooded',
        MESHREG_AGENT_DATA_DIR: dir,
        MESHREG_AGENT_UPSTREAM: server.addresses['session'] ?? '',
      });
      started.push(agent);
      await waitFor('agent linked', async () => {
        const h = await httpJson('GET', `${agent.addresses['agent'] ?? ''}/v1/meshreg/health`);
        return (h.body as { upstream: { state: string } }).upstream.state === 'open';
      });
      keepAlive = new Client(`http://127.0.0.1:${String(portOf(server.addresses['session'] ?? ''))}`, {
        keepAliveTimeout: 30_000,
      });
      keepAlive.on('connect', () => {
        connects++;
      });
      cleanups.push(() => keepAlive.close());
    });

    const viaKeepAlive = async (path: string): Promise<{ status: number; text: string }> => {
      const r = await keepAlive.request({ method: 'GET', path });
      return { status: r.statusCode, text: await r.body.text() };
    };

    test('conn-limits - idle half-open sockets never exceed the pending bound and the server keeps serving', async () => {
      assert.equal((await viaKeepAlive('/health')).status, 200);
      const port = portOf(server.addresses['session'] ?? '');
      const flood = await Promise.all(Array.from({ length: 40 }, () => openIdle(port)));
      idle.push(...flood);
      const closedAtOnce = await closedAfter(flood, 500);
      assert.ok(
        closedAtOnce >= 35,
        `at most 5 sockets wait in their handshake (closed at once: ${String(closedAtOnce)})`,
      );
      // What is already past its handshake is served: the open connection, the agent's link.
      const metrics = parseMetrics((await viaKeepAlive('/metrics')).text);
      const pending = value(metrics, 'meshreg_link_handshakes_pending', { role: 'session' }) ?? -1;
      assert.ok(pending >= 0 && pending <= 5, `pending ${String(pending)}`);
      assert.ok(
        (value(metrics, 'meshreg_link_connections_refused_total', { role: 'session', reason: 'pending' }) ??
          0) >= 35,
      );
      const a = agent.addresses['agent'] ?? '';
      const reg = await httpJson('PUT', `${a}/v1/agent/service/register`, {
        Name: 'flooded-web',
        ID: 'fw-1',
        Port: 1,
      });
      assert.equal(reg.status, 200);
      await waitFor('registration pushed back through the session', async () => {
        const r = await httpJson('GET', `${a}/v1/health/service/flooded-web`);
        return (r.body as unknown[]).length === 1;
      });
      assert.equal(
        ((await httpJson('GET', `${a}/v1/meshreg/health`)).body as { upstream: { state: string } }).upstream
          .state,
        'open',
      );
      // The idle sockets are cut when their handshake time (1.5 s) runs out; new ones are served again.
      await waitFor('idle sockets cut', () => flood.every((i) => i.isClosed()), 5000);
      assert.equal(await healthFrom(port, '127.0.0.1'), 200);
      assert.equal((await viaKeepAlive('/health')).status, 200);
      assert.equal(connects, 1, 'the keep-alive connection was never cut');
    });
  });
});

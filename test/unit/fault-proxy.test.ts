import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { FaultProxy } from '../support/fault-proxy.js';
import { waitFor } from '../support/wait.js';

/** An echo server that prefixes what it echoes, so the two directions can be told apart. */
async function echoServer(): Promise<{ address: string; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => s.write(d));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface Client {
  readonly socket: net.Socket;
  received(): string;
  readonly closed: Promise<void>;
}

async function connect(proxy: FaultProxy): Promise<Client> {
  const socket = net.connect(proxy.port, proxy.host);
  let text = '';
  socket.setEncoding('utf8').on('data', (d: string) => (text += d));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  return { socket, received: () => text, closed };
}

describe('fault proxy', () => {
  let echo: Awaited<ReturnType<typeof echoServer>>;
  let proxy: FaultProxy;

  before(async () => {
    echo = await echoServer();
    proxy = await FaultProxy.start(echo.address);
  });
  after(async () => {
    await proxy.close();
    await echo.close();
  });

  test('fault proxy - passes bytes both ways untouched when healthy', async () => {
    proxy.heal();
    const c = await connect(proxy);
    c.socket.write('hello');
    await waitFor('the echo', () => c.received() === 'hello', 2000);
    assert.ok(proxy.bytes().up >= 5 && proxy.bytes().down >= 5);
    c.socket.destroy();
  });

  test('fault proxy - delay holds every chunk for the time asked, order kept', async () => {
    proxy.heal();
    proxy.delay(200, 'up');
    const c = await connect(proxy);
    const t0 = Date.now();
    c.socket.write('a');
    c.socket.write('b');
    c.socket.write('c');
    await waitFor('the echo', () => c.received() === 'abc', 3000, 5);
    assert.ok(Date.now() - t0 >= 190, `arrived after ${Date.now() - t0} ms`);
    c.socket.destroy();
  });

  test('fault proxy - a blackhole holds bytes through the partition and delivers them on heal', async () => {
    proxy.heal();
    const c = await connect(proxy);
    proxy.blackhole('down');
    c.socket.write('ping');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(c.received(), '', 'nothing may come back through the partition');
    proxy.heal();
    await waitFor('the held echo', () => c.received() === 'ping', 2000);
    c.socket.destroy();
  });

  test('fault proxy - during a blackhole new connections are accepted but not dialled until heal', async () => {
    proxy.heal();
    proxy.blackhole();
    const c = await connect(proxy);
    c.socket.write('late');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(c.received(), '');
    proxy.heal();
    await waitFor('the echo after heal', () => c.received() === 'late', 2000);
    c.socket.destroy();
  });

  test('fault proxy - throttle bounds the rate of one direction', async () => {
    proxy.heal();
    proxy.throttle(20_000, 'up');
    const c = await connect(proxy);
    const t0 = Date.now();
    c.socket.write('x'.repeat(10_000));
    await waitFor('the echo', () => c.received().length === 10_000, 5000, 5);
    // 10 kB at 20 kB/s: the last chunk cannot leave before ~0.5 s minus one chunk's share.
    assert.ok(Date.now() - t0 >= 250, `10 kB through 20 kB/s took only ${Date.now() - t0} ms`);
    c.socket.destroy();
  });

  test('fault proxy - cut resets open connections; refuse closes new ones', async () => {
    proxy.heal();
    const c = await connect(proxy);
    c.socket.write('x');
    await waitFor('the echo', () => c.received() === 'x', 2000);
    assert.equal(proxy.connections, 1);
    proxy.cut();
    await c.closed;
    await waitFor('no connections', () => proxy.connections === 0, 2000);
    proxy.refuse();
    const refused = net.connect(proxy.port, proxy.host);
    const outcome = await new Promise<string>((resolve) => {
      refused.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      refused.on('close', () => resolve('closed'));
    });
    assert.ok(['ECONNRESET', 'closed'].includes(outcome), outcome);
    proxy.heal();
  });

  test('fault proxy - a clean close on one side closes the other once delivered', async () => {
    proxy.heal();
    const before = proxy.accepted;
    const c = await connect(proxy);
    c.socket.end('bye');
    await c.closed;
    await waitFor('the pair dropped', () => proxy.connections === 0, 2000);
    assert.equal(proxy.accepted, before + 1);
  });

  test('fault proxy - rewrite points a URL at the proxy', () => {
    assert.equal(proxy.rewrite('ws://127.0.0.1:1/v1/meta-link'), `ws://${proxy.address}/v1/meta-link`);
    assert.equal(proxy.rewrite('http://127.0.0.1:1'), `http://${proxy.address}`);
  });
});

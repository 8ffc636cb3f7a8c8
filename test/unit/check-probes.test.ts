/**
 * HTTP and TCP probes under a target policy, against real local servers: a name is judged by the
 * addresses the probe's own lookup returns, so a name that resolved to loopback at registration and
 * later resolves elsewhere (DNS rebinding) opens no connection; a literal address outside the list
 * is never dialled.
 */
import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { probeHttp } from '../../agent/checks/check-http.js';
import { TargetPolicy, type CheckNetPolicy, type Resolver } from '../../agent/checks/check-net-policy.js';
import { probeTcp } from '../../agent/checks/check-tcp.js';
import type { HttpTarget } from '../../agent/checks/check-definition.js';

const target = (url: string): HttpTarget => ({
  url,
  method: 'GET',
  headers: {},
  body: '',
  tlsSkipVerify: false,
  disableRedirects: false,
});

test('check probes - a name allowed at registration is refused at connect once it resolves elsewhere', async (t) => {
  let hits = 0;
  const server = http.createServer((_req, res) => {
    hits++;
    res.end('ok');
  });
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as net.AddressInfo).port;
  let answer: LookupAddress[] = [{ address: '127.0.0.1', family: 4 }];
  const lookups: string[] = [];
  const resolver: Resolver = (hostname, _options, callback) => {
    lookups.push(hostname);
    callback(null, answer);
  };
  const targets = new TargetPolicy([], [], resolver);
  const policy: CheckNetPolicy = { targets, redirects: 'same-origin', maxBodyBytes: 4096 };

  // At registration, and on the first probe, the name is loopback: allowed, and the probe connects
  // through the policy's lookup (the name exists nowhere else).
  assert.equal(await targets.refusal('rebind.test'), undefined);
  const first = await probeHttp(target(`http://rebind.test:${port}/`), 2000, 4096, policy);
  assert.equal(first.status, 'passing', first.output);
  assert.equal(hits, 1);
  assert.equal((await probeTcp(`rebind.test:${port}`, 2000, targets)).status, 'passing');

  // Then the name is rebound to an address outside the list: no connection is opened.
  answer = [{ address: '198.51.100.1', family: 4 }];
  const seen = lookups.length;
  const second = await probeHttp(target(`http://rebind.test:${port}/`), 2000, 4096, policy);
  assert.equal(second.status, 'critical');
  assert.match(second.output, /198\.51\.100\.1, outside loopback/);
  const tcp = await probeTcp(`rebind.test:${port}`, 2000, targets);
  assert.equal(tcp.status, 'critical');
  assert.match(tcp.output, /outside loopback/);
  assert.ok(lookups.length > seen, 'each probe resolved the name again');
  assert.equal(hits, 1);
  assert.equal(connections, 2, 'only the probes before the rebinding connected');
  // A mixed answer (one address inside, one outside) is refused too.
  answer = [
    { address: '127.0.0.1', family: 4 },
    { address: '10.9.9.9', family: 4 },
  ];
  assert.equal(
    (await probeHttp(target(`http://rebind.test:${port}/`), 2000, 4096, policy)).status,
    'critical',
  );
  assert.equal(connections, 2);
});

test('check probes - a literal address outside the list is never dialled', async () => {
  const policy: CheckNetPolicy = {
    targets: new TargetPolicy([], []),
    redirects: 'same-origin',
    maxBodyBytes: 4096,
  };
  const started = Date.now();
  const h = await probeHttp(target('http://198.51.100.1:81/'), 10_000, 4096, policy);
  assert.equal(h.status, 'critical');
  assert.match(h.output, /refused by policy/);
  const c = await probeTcp('[2001:db8::1]:22', 10_000, policy.targets);
  assert.equal(c.status, 'critical');
  assert.match(c.output, /refused by policy/);
  assert.ok(Date.now() - started < 1000, 'refused at once, not after a connect timeout');
});

/**
 * etcd's side of the registration-shaped workloads: puts from N client connections (one lease
 * each, a bounded window in flight per connection) until a prefix watcher has seen every key; and
 * a host's graceful leave (its lease revoked) until every watcher has seen every key deleted.
 */
import type { Etcd3, Lease } from 'etcd3';
import type { EtcdServer } from '../etcd.js';
import { until } from '../progress.js';
import { instanceValue } from './common.js';

/** Puts of `total` keys over `clients` connections; returns the rate until a watcher saw them all. */
export async function etcdRegistrations(
  clients: readonly Etcd3[],
  watcherClient: Etcd3,
  prefix: string,
  total: number,
  services: number,
  inflightPerClient: number,
): Promise<{ rate: number; leases: Lease[] }> {
  const leases = clients.map((c) => c.lease(60));
  await Promise.all(leases.map((l) => l.grant()));
  let seen = 0;
  let doneAt = 0;
  const watcher = await watcherClient.watch().prefix(prefix).create();
  watcher.on('put', () => {
    if (++seen >= total && doneAt === 0) doneAt = performance.now();
  });
  // Each client keeps a bounded window in flight: with all of them at once etcd refuses
  // ("too many requests") once its apply loop falls 5,000 entries behind its log.
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: leases.length * inflightPerClient }, async (_, w) => {
      const lease = leases[w % leases.length];
      for (let k = next++; k < total && lease !== undefined; k = next++) {
        const service = `reg-svc-${k % services}`;
        await lease
          .put(`${prefix}${service}/i-${k}`)
          .value(instanceValue(service, `i-${k}`, 10_000 + (k % 50_000)))
          .exec();
      }
    }),
  );
  await until(
    'the watcher to see every key',
    () => doneAt !== 0,
    60_000,
    5,
    () => `${seen} seen`,
  );
  await watcher.cancel();
  return { rate: (total / (doneAt - start)) * 1000, leases };
}

/**
 * A host with `count` keys on one lease leaves gracefully (revokes its lease); returns the ms until
 * every one of `watchers` (spread over `conns` connections) has seen every key deleted.
 */
export async function etcdLeave(
  server: EtcdServer,
  count: number,
  watchers: number,
  conns: number,
): Promise<number> {
  const host = server.client();
  const lease = host.lease(600);
  await lease.grant();
  const prefix = '/bench/leave/';
  for (let i = 0; i < count; i += 200) {
    await Promise.all(
      Array.from({ length: Math.min(200, count - i) }, (_, j) =>
        lease
          .put(`${prefix}i-${i + j}`)
          .value(instanceValue('leave', `i-${i + j}`, 20_000 + i + j))
          .exec(),
      ),
    );
  }
  const clients = Array.from({ length: Math.min(conns, watchers) }, () => server.client());
  let gone = 0;
  let lastAt = 0;
  const ws = [];
  for (let i = 0; i < watchers; i++) {
    const c = clients[i % clients.length];
    if (c === undefined) continue;
    const w = await c.watch().prefix(prefix).create();
    let deleted = 0;
    w.on('delete', () => {
      if (++deleted === count) {
        gone++;
        lastAt = performance.now();
      }
    });
    ws.push(w);
  }
  const start = performance.now();
  await lease.revoke();
  await until(
    'every etcd watcher to see the keys deleted',
    () => gone >= ws.length,
    30_000,
    1,
    () => `${gone} done`,
  );
  await Promise.all(ws.map((w) => w.cancel()));
  return lastAt - start;
}

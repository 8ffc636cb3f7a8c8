/**
 * Workload 4, churn: a real `meshreg agent` process holding N instances is killed (SIGKILL); time
 * from the kill until every subscribing agent sees all of them removed. The session keeps a closed
 * connection's instances for the grace period, so the target is grace + 100 ms.
 * etcd: a client holding N keys on one lease stops its keep-alives and disconnects (the lease
 * expires after its TTL); and, for the fan-out alone, a lease revoke.
 */
import { Agent as HttpAgent, request } from 'undici';
import { startMeshreg, tempDir } from '../../support/process.js';
import type { BenchOptions } from '../options.js';
import { progress, sleep, until } from '../progress.js';
import { budget, type WorkloadResult } from '../report.js';
import { BENCH_ENV, freePort, processProblems, startServer } from '../processes.js';
import { SimAgent, openAll, stopAll } from '../sim-agent.js';
import { median, summarize, type Summary } from '../stats.js';
import { instanceValue, side } from './common.js';
import { startEtcd, type EtcdServer } from '../etcd.js';

const SERVICES = 10;

interface ChurnRound {
  readonly removedMs: number;
}

export async function churn(o: BenchOptions): Promise<WorkloadResult> {
  const t0 = performance.now();
  const problems: string[] = [];
  const scope = 'churn';
  const services = Array.from({ length: SERVICES }, (_, i) => `churn-svc-${i}`);

  const meshreg = await side('meshreg', problems, o.workloadTimeoutMs, async (cleanups) => {
    const cp = await startServer({
      MESHREG_DATA_WARMUP_MS: '200',
      MESHREG_SESSION_CLIENT_GRACE_MS: String(o.graceMs),
    });
    cleanups.push(() => {
      problems.push(...processProblems(cp));
      return cp.proc.stop();
    });
    const subs = Array.from({ length: o.churnSubscribers }, (_, i) => new SimAgent(`churn-sub-${i}`, cp.url));
    cleanups.push(() => {
      stopAll(subs);
    });
    for (const s of subs) for (const svc of services) s.watch(svc);
    await openAll(subs, 60_000);
    const total = (s: SimAgent): number => services.reduce((n, svc) => n + s.count(svc), 0);
    const rounds: ChurnRound[] = [];
    const http = new HttpAgent({ connections: 16 });
    cleanups.push(() => http.close());
    for (let round = 0; round < o.churnRounds; round++) {
      const dir = await tempDir('meshreg-bench-agent-');
      cleanups.push(() => dir.cleanup());
      const victim = await startMeshreg('agent', {
        ...BENCH_ENV,
        MESHREG_AGENT_UPSTREAM: cp.url,
        MESHREG_AGENT_PORT: String(await freePort()),
        MESHREG_AGENT_DATA_DIR: dir.dir,
        MESHREG_NODE_NAME: `victim-${round}`,
      });
      cleanups.push(() => victim.stop('SIGKILL'));
      const base = victim.addresses.agent ?? '';
      const ids = Array.from({ length: o.churnInstances }, (_, i) => i);
      for (let i = 0; i < ids.length; i += 16) {
        await Promise.all(
          ids.slice(i, i + 16).map(async (k) => {
            const res = await request(`${base}/v1/agent/service/register`, {
              method: 'PUT',
              dispatcher: http,
              body: JSON.stringify({ Name: services[k % SERVICES], ID: `v${round}-${k}`, Port: 20_000 + k }),
            });
            await res.body.dump();
            if (res.statusCode !== 200) throw new Error(`register answered ${res.statusCode}`);
          }),
        );
      }
      await until(
        'every subscriber to see the victim instances',
        () => subs.every((s) => total(s) === o.churnInstances),
        30_000,
        5,
      );
      await sleep(200);
      let gone = 0;
      let lastAt = 0;
      for (const s of subs) {
        let done = false;
        s.onChanged = () => {
          if (done || total(s) !== 0) return;
          done = true;
          gone++;
          lastAt = performance.now();
        };
      }
      const killedAt = performance.now();
      victim.child.kill('SIGKILL');
      await until(
        'every subscriber to see all removed',
        () => gone === subs.length,
        o.graceMs + 30_000,
        2,
        () => `${gone}/${subs.length} subscribers emptied`,
      );
      rounds.push({ removedMs: lastAt - killedAt });
      progress(
        scope,
        `meshreg round ${round + 1}/${o.churnRounds}: all removed after ${Math.round(lastAt - killedAt)} ms`,
      );
    }
    return rounds;
  });

  const etcd = !o.etcd
    ? undefined
    : await side('etcd', problems, o.workloadTimeoutMs, async (cleanups) => {
        const server = await startEtcd();
        cleanups.push(() => server.stop());
        const expiry: number[] = [];
        const revoke: number[] = [];
        for (let round = 0; round < o.churnRounds; round++) {
          expiry.push(await etcdRound(server, o, round, 'expire'));
          revoke.push(await etcdRound(server, o, round, 'revoke'));
          progress(
            scope,
            `etcd round ${round + 1}/${o.churnRounds}: expiry ${Math.round(expiry.at(-1) ?? NaN)} ms, revoke ${Math.round(revoke.at(-1) ?? NaN)} ms`,
          );
        }
        return { expiry, revoke };
      });

  const removed = meshreg?.map((r) => r.removedMs);
  const m = removed === undefined ? undefined : median(removed);
  const dist: Record<string, Summary> = {};
  if (removed !== undefined)
    dist['meshreg ms from kill until every subscriber saw all removed'] = summarize(removed);
  if (etcd !== undefined) {
    dist['etcd ms from client death until every watcher saw all deleted (lease expiry)'] = summarize(
      etcd.expiry,
    );
    dist['etcd ms from revoke until every watcher saw all deleted'] = summarize(etcd.revoke);
  }
  return {
    workload: scope,
    metrics: [
      {
        name: 'kill → all removed, median',
        unit: 'ms',
        better: 'lower',
        meshreg: m,
        etcd: etcd === undefined ? undefined : median(etcd.expiry),
        target: budget(m, 'lower', o.graceMs + 100, `≤ grace ${o.graceMs} + 100 ms`),
      },
      {
        name: 'removal fan-out after grace/revoke',
        unit: 'ms',
        better: 'lower',
        meshreg: m === undefined ? undefined : m - o.graceMs,
        etcd: etcd === undefined ? undefined : median(etcd.revoke),
      },
    ],
    distributions: dist,
    notes: [
      `a real meshreg agent process with ${o.churnInstances} instances over ${SERVICES} services is killed with SIGKILL; ${o.churnSubscribers} subscribing agents; session grace ${o.graceMs} ms; ${o.churnRounds} round(s), median`,
      `etcd: ${o.churnInstances} keys on one lease (TTL ${o.etcdLeaseTtlSec} s, etcd's minimum is about 2 s) watched by ${o.churnSubscribers} prefix watchers; "kill" stops the keep-alives and closes the client, so the lease expires by itself; the fan-out row revokes the lease instead`,
      'the fan-out row for meshreg is the measured time minus the grace period',
    ],
    problems,
    durationMs: performance.now() - t0,
  };
}

/** One etcd round: returns ms from the client's death (or the revoke) until every watcher saw all deleted. */
async function etcdRound(
  server: EtcdServer,
  o: BenchOptions,
  round: number,
  how: 'expire' | 'revoke',
): Promise<number> {
  const prefix = `/bench/churn/${how}-${round}/`;
  const conns = Array.from({ length: Math.min(o.etcdConnections, o.churnSubscribers) }, () =>
    server.client(),
  );
  const watchers = await Promise.all(
    Array.from({ length: o.churnSubscribers }, (_, i) => pick(conns, i).watch().prefix(prefix).create()),
  );
  const victim = server.client();
  const lease = victim.lease(o.etcdLeaseTtlSec);
  await lease.grant();
  const puts: Promise<unknown>[] = [];
  for (let k = 0; k < o.churnInstances; k++) {
    const svc = `churn-svc-${k % SERVICES}`;
    puts.push(
      lease
        .put(`${prefix}${svc}/${k}`)
        .value(instanceValue(svc, String(k), 20_000 + k))
        .exec(),
    );
  }
  await Promise.all(puts);
  let emptied = 0;
  let lastAt = 0;
  for (const w of watchers) {
    let deleted = 0;
    w.on('delete', () => {
      if (++deleted === o.churnInstances) {
        emptied++;
        lastAt = performance.now();
      }
    });
  }
  await sleep(200);
  const start = performance.now();
  if (how === 'revoke') {
    await lease.revoke();
  } else {
    lease.release();
    victim.close();
  }
  await until(
    'every watcher to see all deleted',
    () => emptied === watchers.length,
    o.etcdLeaseTtlSec * 1000 + 30_000,
  );
  for (const w of watchers) await w.cancel();
  for (const c of conns) c.close();
  if (how === 'revoke') victim.close();
  return lastAt - start;
}

function pick<T>(items: readonly T[], i: number): T {
  const v = items[i % items.length];
  if (v === undefined) throw new Error('pick from an empty list');
  return v;
}

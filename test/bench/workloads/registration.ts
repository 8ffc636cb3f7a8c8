/**
 * Workload 1, registration throughput: N instances over S services from A agents, registered one by
 * one as apps would (one publish frame each), timed until a subscriber of every service sees all.
 * etcd: A clients, one lease each, one put per instance; a prefix watch counts them.
 */
import type { BenchOptions } from '../options.js';
import { progress, sleep, until } from '../progress.js';
import { budget, type WorkloadResult } from '../report.js';
import { processProblems, startServer } from '../processes.js';
import { SimAgent, openAll, stopAll } from '../sim-agent.js';
import { summarize, median } from '../stats.js';
import { instanceValue, side, spread, yieldLoop } from './common.js';
import { startEtcd } from '../etcd.js';

/** Puts each etcd client keeps in flight. */
const ETCD_INFLIGHT_PER_CLIENT = 16;

export async function registration(o: BenchOptions): Promise<WorkloadResult> {
  const t0 = performance.now();
  const problems: string[] = [];
  const scope = 'registration';
  const perAgent = spread(o.regInstances, o.regAgents);

  const meshreg = await side('meshreg', problems, o.workloadTimeoutMs, async (cleanups) => {
    const cp = await startServer({ MESHREG_DATA_WARMUP_MS: '200' });
    cleanups.push(() => {
      problems.push(...processProblems(cp));
      return cp.proc.stop();
    });
    await sleep(300);
    const rates: number[] = [];
    for (let round = 0; round < o.regRounds; round++) {
      const services = Array.from({ length: o.regServices }, (_, i) => `reg-r${round}-svc-${i}`);
      const subscriber = new SimAgent(`reg-sub-${round}`, cp.url);
      for (const s of services) subscriber.watch(s);
      const agents = perAgent.map((_, i) => new SimAgent(`reg-${round}-${i}`, cp.url));
      cleanups.push(() => {
        stopAll([subscriber, ...agents]);
      });
      await openAll([subscriber, ...agents], 60_000);
      let seen = 0;
      let doneAt = 0;
      subscriber.onChanged = () => {
        seen = services.reduce((n, s) => n + subscriber.count(s), 0);
        if (seen >= o.regInstances && doneAt === 0) doneAt = performance.now();
      };
      const start = performance.now();
      let k = 0;
      for (const [a, agent] of agents.entries()) {
        for (let j = 0; j < (perAgent[a] ?? 0); j++, k++) {
          agent.register(services[k % services.length] ?? '', `i-${a}-${j}`, 10_000 + (k % 50_000));
        }
        await yieldLoop();
      }
      await until(
        'the subscriber to see every instance',
        () => doneAt !== 0,
        60_000,
        5,
        () => `${seen} seen`,
      );
      const rate = (o.regInstances / (doneAt - start)) * 1000;
      rates.push(rate);
      progress(scope, `meshreg round ${round + 1}/${o.regRounds}: ${Math.round(rate)} registrations/s`);
      stopAll([subscriber, ...agents]);
    }
    return rates;
  });

  const etcd = !o.etcd
    ? undefined
    : await side('etcd', problems, o.workloadTimeoutMs, async (cleanups) => {
        const server = await startEtcd();
        cleanups.push(() => server.stop());
        const rates: number[] = [];
        const clients = perAgent.map(() => server.client());
        const watcherClient = server.client();
        for (let round = 0; round < o.regRounds; round++) {
          const prefix = `/bench/reg/r${round}/`;
          const leases = clients.map((c) => c.lease(60));
          await Promise.all(leases.map((l) => l.grant()));
          let seen = 0;
          let doneAt = 0;
          const watcher = await watcherClient.watch().prefix(prefix).create();
          watcher.on('put', () => {
            if (++seen >= o.regInstances && doneAt === 0) doneAt = performance.now();
          });
          // Each client keeps a bounded window in flight: with all 20,000 at once etcd refuses
          // ("too many requests") once its apply loop falls 5,000 entries behind its log.
          let next = 0;
          const jobs: (() => Promise<unknown>)[] = [];
          for (const [a, lease] of leases.entries()) {
            for (let j = 0; j < (perAgent[a] ?? 0); j++) {
              const k = next++;
              const service = `reg-svc-${k % o.regServices}`;
              const id = `i-${a}-${j}`;
              jobs.push(() =>
                lease
                  .put(`${prefix}${service}/${id}`)
                  .value(instanceValue(service, id, 10_000 + k))
                  .exec(),
              );
            }
          }
          const start = performance.now();
          await Promise.all(
            Array.from({ length: clients.length * ETCD_INFLIGHT_PER_CLIENT }, async () => {
              for (let job = jobs.shift(); job !== undefined; job = jobs.shift()) await job();
            }),
          );
          await until(
            'the watcher to see every key',
            () => doneAt !== 0,
            60_000,
            5,
            () => `${seen} seen`,
          );
          const rate = (o.regInstances / (doneAt - start)) * 1000;
          rates.push(rate);
          progress(scope, `etcd round ${round + 1}/${o.regRounds}: ${Math.round(rate)} registrations/s`);
          await watcher.cancel();
          await Promise.all(leases.map((l) => l.revoke()));
        }
        return rates;
      });

  const m = meshreg === undefined ? undefined : median(meshreg);
  const e = etcd === undefined ? undefined : median(etcd);
  const fiveX = e === undefined ? undefined : 5 * e;
  return {
    workload: scope,
    metrics: [
      {
        name: 'registrations/s until visible',
        unit: '1/s',
        better: 'higher',
        meshreg: m,
        etcd: e,
        ...(fiveX === undefined ? {} : { target: budget(m, 'higher', fiveX, '≥ 5× etcd') }),
      },
    ],
    distributions: {
      ...(meshreg === undefined ? {} : { 'meshreg registrations/s per round': summarize(meshreg) }),
      ...(etcd === undefined ? {} : { 'etcd registrations/s per round': summarize(etcd) }),
    },
    notes: [
      `${o.regInstances} instances over ${o.regServices} services from ${o.regAgents} agents, ${o.regRounds} round(s), median`,
      'meshreg: simulated agents (the agent upstream code, one WebSocket each) register one instance per publish frame; one agent subscribes to every service',
      `etcd: one lease per agent connection, one put per instance (${ETCD_INFLIGHT_PER_CLIENT} in flight per connection on average), one prefix watch counts them`,
    ],
    problems,
    durationMs: performance.now() - t0,
  };
}

/**
 * Workload 1, registration throughput: N instances over S services from A agents, registered one by
 * one as apps would (one publish frame each), timed until a subscriber of every service sees all.
 * etcd: A clients, one lease each, one put per instance; a prefix watch counts them.
 */
import type { BenchOptions } from '../options.js';
import { progress, until } from '../progress.js';
import { budget, type WorkloadResult } from '../report.js';
import { startCluster } from '../cluster.js';
import { measured, type PhaseCpu } from '../cpu.js';
import { SimAgent, openAll, stopAll } from '../sim-agent.js';
import { summarize, median } from '../stats.js';
import { side, spread, yieldLoop } from './common.js';
import { etcdRegistrations } from './etcd-load.js';
import { startEtcd } from '../etcd.js';

/** Puts each etcd client keeps in flight. */
const ETCD_INFLIGHT_PER_CLIENT = 16;

export async function registration(o: BenchOptions): Promise<WorkloadResult> {
  const t0 = performance.now();
  const problems: string[] = [];
  const cpu: PhaseCpu[] = [];
  const scope = 'registration';
  const perAgent = spread(o.regInstances, o.regAgents);

  const meshreg = await side('meshreg', problems, o.workloadTimeoutMs, async (cleanups) => {
    const cp = await startCluster({ env: { MESHREG_DATA_WARMUP_MS: '200' } });
    cleanups.push(() => {
      problems.push(...cp.problems());
      return cp.stop();
    });
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
      const phase = await measured(
        cp.components(),
        `${scope}: meshreg`,
        'registration',
        () => o.regInstances,
        async () => {
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
        },
      );
      // One round's CPU stands for all (the last one, after the first has warmed every process).
      if (round === o.regRounds - 1) cpu.push(phase.cpu);
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
          const phase = await measured(
            { etcd: [server.pid] },
            `${scope}: etcd`,
            'registration',
            () => o.regInstances,
            () =>
              etcdRegistrations(
                clients,
                watcherClient,
                `/bench/reg/r${round}/`,
                o.regInstances,
                o.regServices,
                ETCD_INFLIGHT_PER_CLIENT,
              ),
          );
          if (round === o.regRounds - 1) cpu.push(phase.cpu);
          const { rate, leases } = phase.result;
          rates.push(rate);
          progress(scope, `etcd round ${round + 1}/${o.regRounds}: ${Math.round(rate)} registrations/s`);
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
      'meshreg: simulated agents (the agent upstream code, one WebSocket each) register one instance per publish frame; one agent subscribes to every service; meta, data and session run as separate processes',
      `etcd: one lease per agent connection, one put per instance (${ETCD_INFLIGHT_PER_CLIENT} in flight per connection on average), one prefix watch counts them`,
    ],
    problems,
    durationMs: performance.now() - t0,
    cpu,
  };
}

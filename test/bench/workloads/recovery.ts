/**
 * Workload 6, recovery: N instances over A agents, S agents subscribed to every service; the whole
 * control-plane process is killed (SIGKILL, a crash) and started again on the same port with the
 * product's default warm-up. Timed from the kill: until every instance is confirmed again by the
 * new process, and until every subscriber holds a complete (post-warm-up), newer and correct list
 * of every service. No etcd side: etcd keeps its data on disk, so a restart is a different recovery
 * model, not the same workload.
 */
import type { BenchOptions } from '../options.js';
import { progress, sleep, until } from '../progress.js';
import { budget, type WorkloadResult } from '../report.js';
import { startCluster, type Cluster } from '../cluster.js';
import { phaseCpu, snapshot, type PhaseCpu } from '../cpu.js';
import { SimAgent, countLinks, openAll, stopAll } from '../sim-agent.js';
import type { Summary } from '../stats.js';
import { side, spread } from './common.js';

const WARMUP_MS = 3000;

/** What the restart set off: the session's ack-timeout closes and re-sends, the agents' reconnects. */
interface Storm {
  readonly ackTimeouts: number;
  readonly retries: number;
  readonly opens: number;
  readonly backoffs: number;
}

interface RecoveryRun {
  readonly restartedMs: number;
  readonly backMs: number;
  readonly convergedMs: number;
}

export async function recovery(o: BenchOptions): Promise<WorkloadResult> {
  const t0 = performance.now();
  const problems: string[] = [];
  const cpu: PhaseCpu[] = [];
  let storm: Storm | undefined;
  const scope = 'recovery';
  const services = Array.from({ length: o.recoveryServices }, (_, i) => `rec-svc-${i}`);
  const perService = spread(o.recoveryInstances, o.recoveryServices);

  const meshreg = await side(
    'meshreg',
    problems,
    o.workloadTimeoutMs,
    async (cleanups): Promise<RecoveryRun> => {
      const env = { MESHREG_DATA_WARMUP_MS: String(WARMUP_MS) };
      let cp: Cluster = await startCluster({ env });
      cleanups.push(() => {
        problems.push(...cp.problems());
        return cp.stop();
      });
      const perAgent = spread(o.recoveryInstances, o.recoveryAgents);
      const agents = perAgent.map((_, a) => new SimAgent(`rec-${a}`, cp.url));
      const subs = Array.from(
        { length: o.recoverySubscribers },
        (_, i) => new SimAgent(`rec-sub-${i}`, cp.url),
      );
      cleanups.push(() => {
        stopAll([...agents, ...subs]);
      });
      let k = 0;
      for (const [a, agent] of agents.entries()) {
        for (let j = 0; j < (perAgent[a] ?? 0); j++, k++) {
          agent.register(services[k % services.length] ?? '', `i-${j}`, 10_000 + (k % 50_000));
        }
      }
      for (const s of subs) for (const svc of services) s.watch(svc);
      await openAll([...agents, ...subs], 120_000, 10);
      const confirmed = (): number => agents.reduce((n, ag) => n + ag.sync.counters.confirms, 0);
      const correct = (s: SimAgent, newerThan?: Map<string, number>): boolean =>
        services.every((svc, i) => {
          const w = s.view.get(svc);
          if (w === undefined || !w.complete || w.remote.size !== perService[i]) return false;
          return newerThan === undefined || w.version > (newerThan.get(svc) ?? Infinity);
        });
      await until(
        'every instance confirmed and every subscriber complete',
        () => confirmed() >= o.recoveryInstances && subs.every((s) => correct(s)),
        120_000,
        20,
      );
      progress(
        scope,
        `meshreg: ${o.recoveryInstances} instances up, ${subs.length} subscribers complete; killing the control plane`,
      );
      await sleep(500);
      const before = subs.map((s) => new Map(services.map((svc) => [svc, s.view.get(svc)?.version ?? 0])));
      const baseline = agents.map((ag) => ag.sync.counters.confirms);
      const links = countLinks([...agents, ...subs]);
      cleanups.push(links.stop);
      const killedAt = performance.now();
      const loadBefore = await snapshot({ load: [process.pid] });
      await cp.stop('SIGKILL');
      problems.push(...cp.problems());
      cp = await startCluster({ env, sessionPort: cp.sessionPort });
      const restartedMs = performance.now() - killedAt;
      progress(scope, `meshreg: control plane back after ${Math.round(restartedMs)} ms`);
      const back = (): boolean =>
        agents.every((ag, i) => ag.sync.counters.confirms - (baseline[i] ?? 0) >= (perAgent[i] ?? 0));
      let backMs = 0;
      const restarted = cp;
      // The storm counters are read even when convergence times out: they are what explains it.
      const readStorm = async (): Promise<void> => {
        storm = {
          ackTimeouts: await restarted.sessionMetric('meshreg_push_failed_total'),
          retries: await restarted.sessionMetric('meshreg_push_retried_total'),
          opens: links.opens(),
          backoffs: links.backoffs(),
        };
      };
      await until(
        'every subscriber to converge',
        () => {
          if (backMs === 0 && back()) backMs = performance.now() - killedAt;
          return backMs !== 0 && subs.every((s, i) => correct(s, before[i]));
        },
        60_000,
        5,
        () =>
          `${agents.filter((ag, i) => ag.sync.counters.confirms - (baseline[i] ?? 0) >= (perAgent[i] ?? 0)).length}/${agents.length} agents re-confirmed`,
      ).finally(readStorm);
      const total = performance.now() - killedAt;
      // The new processes' CPU from their start; the load process's from the kill.
      const after = await snapshot({ ...cp.components(), load: [process.pid] });
      cpu.push(phaseCpu(`${scope}: meshreg`, 'instance', o.recoveryInstances, loadBefore, after));
      progress(
        scope,
        `meshreg: all instances back after ${Math.round(backMs)} ms, converged after ${Math.round(total)} ms`,
      );
      return { restartedMs, backMs, convergedMs: total };
    },
  );

  const dist: Record<string, Summary> = {};
  const links = o.recoveryAgents + o.recoverySubscribers;
  return {
    workload: scope,
    metrics: [
      {
        name: 'process restarted (kill → ready)',
        unit: 'ms',
        better: 'lower',
        meshreg: meshreg?.restartedMs,
        etcd: undefined,
      },
      { name: 'every instance back', unit: 'ms', better: 'lower', meshreg: meshreg?.backMs, etcd: undefined },
      {
        name: 'every subscriber converged',
        unit: 'ms',
        better: 'lower',
        meshreg: meshreg?.convergedMs,
        etcd: undefined,
        target: budget(meshreg?.convergedMs, 'lower', 10_000, '≤ 10 s'),
      },
      {
        name: 'ack-timeout closes after the restart',
        unit: 'count',
        better: 'lower',
        meshreg: storm?.ackTimeouts,
        etcd: undefined,
        target: budget(storm?.ackTimeouts, 'lower', 0, 'none'),
      },
      {
        name: 'push re-sends after the restart',
        unit: 'count',
        better: 'lower',
        meshreg: storm?.retries,
        etcd: undefined,
      },
      {
        name: 'agent reconnects after the restart',
        unit: 'count',
        better: 'lower',
        meshreg: storm?.opens,
        etcd: undefined,
        target: budget(storm?.opens, 'lower', links, `≤ ${links} (one per agent)`),
      },
      {
        name: 'failed connects or drops after the restart',
        unit: 'count',
        better: 'lower',
        meshreg: storm?.backoffs,
        etcd: undefined,
      },
    ],
    distributions: dist,
    notes: [
      `${o.recoveryInstances} instances over ${o.recoveryServices} services from ${o.recoveryAgents} agents; ${o.recoverySubscribers} agents subscribed to every service; one run`,
      `the meshreg server is killed with SIGKILL and restarted on the same port with warm-up ${WARMUP_MS} ms (the default); agents reconnect with the default backoff (100 ms doubling, jittered)`,
      '"converged" = every subscriber holds, for every service, a complete list with the right count at a version newer than before the crash; it cannot come before the warm-up ends',
      'no etcd side: etcd recovers from its own disk, which is not the same workload',
      'meta, data and session run as separate processes, all killed and restarted (the session on its port); their CPU is from their start to convergence, per instance',
      'storm counters: meshreg_push_failed_total (pushes given up after ack timeouts, each closing its connection) and meshreg_push_retried_total of the restarted session; link opens and entries into backoff counted on the simulated agents from the kill',
    ],
    problems,
    durationMs: performance.now() - t0,
    cpu,
  };
}

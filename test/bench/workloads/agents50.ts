/**
 * Workload agents50, the sidecar model end to end: A real `meshreg agent` processes on a control
 * plane of three role processes, each driven by its own client through the Consul HTTP API, with
 * etcd beside it in the same run and the same counts.
 * - registration: N instances over S services, one client per agent keeping K requests in flight,
 *   timed until a subscriber of every service (a simulated agent) holds them all; etcd: A clients,
 *   one lease each, K puts in flight each, until a prefix watcher has seen every key;
 * - push: W blocking queries per agent on one service (A × W watchers), one instance changed on
 *   agent 0, timed until the last watcher returned with it; etcd: A × W watchers over A connections;
 * - leave: one agent's M instances withdrawn by a graceful leave (`PUT /v1/agent/leave`) until a blocking
 *   query on every agent has seen them gone; etcd: the host's lease revoked, A watchers.
 * The agents' CPU per registration and per watcher per change are judged against the agent budgets.
 */
import { Pool } from 'undici';
import { startCluster, type Cluster } from '../cluster.js';
import { measured, type Components, type PhaseCpu } from '../cpu.js';
import { startEtcd } from '../etcd.js';
import type { BenchOptions } from '../options.js';
import { progress, sleep, until } from '../progress.js';
import { budget, type Metric, type WorkloadResult } from '../report.js';
import { BlockingWatcher, startAgents, type RealAgent } from '../real-agent.js';
import { SimAgent } from '../sim-agent.js';
import { summarize, type Summary } from '../stats.js';
import { agentCpuMetrics, blockingTarget, inParallel } from './agent1.js';
import { side } from './common.js';
import { etcdLeave, etcdRegistrations } from './etcd-load.js';
import { etcdPush, pushDistributions, pushMetrics, timeFlips, type PushRun } from './push-timing.js';

const SCOPE = 'agents50';
const PUSH_SERVICE = 'a50-push';
const LEAVE_SERVICE = 'a50-leave';

interface SideRun {
  regRate?: number;
  push?: PushRun;
  leaveMs?: number;
}

export async function agents50(o: BenchOptions): Promise<WorkloadResult> {
  const t0 = performance.now();
  const problems: string[] = [];
  const cpu: PhaseCpu[] = [];
  const m = await side('meshreg', problems, o.workloadTimeoutMs * 3, async (cleanups) => {
    const cluster = await startCluster({ env: { MESHREG_DATA_WARMUP_MS: '200' } });
    cleanups.push(() => {
      problems.push(...cluster.problems());
      return cluster.stop();
    });
    const conns = Math.max(o.a50Inflight, 8);
    const agents = await startAgents('a50', o.a50Agents, cluster.url, conns, (a) =>
      cleanups.push(() => a.stop()),
    );
    progress(SCOPE, `meshreg: ${agents.length} agents started`);
    const components = { ...cluster.components(), agents: agents.map((a) => a.pid) };
    const run: SideRun = {};
    run.regRate = await registrations(o, cluster, agents, components, cpu, problems, cleanups);
    run.push = await agentPush(o, agents, components, cpu, problems);
    run.leaveMs = await leave(o, agents, components, cpu);
    return run;
  });
  const e = !o.etcd
    ? undefined
    : await side('etcd', problems, o.workloadTimeoutMs * 2, async (cleanups) => {
        const server = await startEtcd();
        cleanups.push(() => server.stop());
        const run: SideRun = {};
        const clients = Array.from({ length: o.a50Agents }, () => server.client());
        const reg = await measured(
          { etcd: [server.pid] },
          `${SCOPE} registration: etcd`,
          'registration',
          () => o.a50Registrations,
          () =>
            etcdRegistrations(
              clients,
              server.client(),
              '/bench/a50/',
              o.a50Registrations,
              o.a50Services,
              o.a50Inflight,
            ),
        );
        cpu.push(reg.cpu);
        run.regRate = reg.result.rate;
        progress(SCOPE, `etcd: ${Math.round(run.regRate)} registrations/s`);
        const watchers = o.a50Agents * o.a50WatchersPerAgent;
        const p = await etcdPush(server, SCOPE, 'push', watchers, o.a50Agents, o.a50Changes, problems);
        cpu.push(p.cpu);
        run.push = p.run;
        run.leaveMs = await etcdLeave(server, o.a50DeregInstances, o.a50Agents, o.a50Agents);
        return run;
      });
  const dist: Record<string, Summary> = {
    ...pushDistributions('meshreg', m?.push),
    ...pushDistributions('etcd', e?.push),
  };
  return {
    workload: SCOPE,
    metrics: [...agents50Metrics(o, m, e), ...agentCpuMetrics(cpu, `${SCOPE} registration`, `${SCOPE} push`)],
    distributions: dist,
    notes: [
      `${o.a50Agents} real meshreg agents (HTTP API, disk, blocking queries) on meta, data and session processes; etcd in the same run with the same counts`,
      `registration: ${o.a50Registrations} instances over ${o.a50Services} services, one client per agent with ${o.a50Inflight} requests in flight; "visible" = a subscriber of every service holds them all (etcd: a prefix watcher saw every put)`,
      `push: ${o.a50WatchersPerAgent} blocking queries per agent on one service, ${o.a50Changes} changes made on agent 0 (etcd: as many watchers over ${o.a50Agents} connections)`,
      `leave: one agent's ${o.a50DeregInstances} instances withdrawn by a graceful leave (PUT /v1/agent/leave) until a blocking query on every other agent returns none (etcd: the host's lease revoked, one watcher per connection)`,
    ],
    problems,
    durationMs: performance.now() - t0,
    cpu,
  };
}

function agents50Metrics(o: BenchOptions, m: SideRun | undefined, e: SideRun | undefined): Metric[] {
  return [
    {
      name: 'registrations/s until visible',
      unit: '1/s',
      better: 'higher',
      meshreg: m?.regRate,
      etcd: e?.regRate,
      ...(e?.regRate === undefined ? {} : { target: budget(m?.regRate, 'higher', e.regRate, '≥ etcd') }),
    },
    ...pushMetrics(
      `push to ${o.a50Agents}×${o.a50WatchersPerAgent} blocking queries`,
      m?.push,
      e?.push,
      (p99) =>
        p99 === undefined ? { limit: NaN, text: '≤ 0.7× etcd' } : { limit: 0.7 * p99, text: '≤ 0.7× etcd' },
    ),
    {
      name: `graceful leave of ${o.a50DeregInstances} instances, every watcher`,
      unit: 'ms',
      better: 'lower',
      meshreg: m?.leaveMs,
      etcd: e?.leaveMs,
      target: budget(m?.leaveMs, 'lower', 100, '≤ 100 ms'),
    },
  ];
}

async function registrations(
  o: BenchOptions,
  cluster: Cluster,
  agents: readonly RealAgent[],
  components: Components,
  cpu: PhaseCpu[],
  problems: string[],
  cleanups: (() => unknown)[],
): Promise<number> {
  const services = Array.from({ length: o.a50Services }, (_, i) => `a50-svc-${i}`);
  const observer = new SimAgent('a50-observer', cluster.url);
  cleanups.push(() => {
    observer.stop();
  });
  for (const s of services) observer.watch(s);
  observer.start();
  await until('the observer to connect', () => observer.open, 10_000);
  let doneAt = 0;
  observer.onChanged = () => {
    if (doneAt === 0 && services.reduce((n, s) => n + observer.count(s), 0) >= o.a50Registrations)
      doneAt = performance.now();
  };
  const start = performance.now();
  const { cpu: phase } = await measured(
    components,
    `${SCOPE} registration`,
    'registration',
    () => o.a50Registrations,
    async () => {
      // Registration k goes to agent k mod A: each agent's client takes its own share.
      const failed = await Promise.all(
        agents.map((agent, a) => {
          const mine = Math.ceil((o.a50Registrations - a) / agents.length);
          return inParallel(mine, o.a50Inflight, (j) => {
            const k = a + j * agents.length;
            return agent.register(services[k % services.length] ?? '', `a50-${k}`, 10_000 + (k % 50_000));
          });
        }),
      );
      const n = failed.reduce((x, y) => x + y, 0);
      if (n > 0) problems.push(`meshreg: ${n} registrations failed`);
      await until('the observer to see every instance', () => doneAt !== 0, o.workloadTimeoutMs, 10);
    },
  );
  cpu.push(phase);
  const rate = (o.a50Registrations / (doneAt - start)) * 1000;
  progress(
    SCOPE,
    `meshreg: ${Math.round(rate)} registrations/s; agents ${phase.usPerOp['agents']?.toFixed(0)} µs each`,
  );
  return rate;
}

/** W blocking queries per agent on `service`, each pool sized so every query has its connection. */
async function watchersOn(
  agents: readonly RealAgent[],
  service: string,
  perAgent: number,
  count: boolean,
): Promise<{ ws: BlockingWatcher[]; close: () => Promise<void> }> {
  const pools = agents.map((a) => new Pool(a.base, { connections: perAgent, pipelining: 1 }));
  const ws = pools.flatMap((p) =>
    Array.from({ length: perAgent }, () => new BlockingWatcher(p, service, count)),
  );
  for (let i = 0; i < ws.length; i += 100) await Promise.all(ws.slice(i, i + 100).map((w) => w.start()));
  return {
    ws,
    close: async () => {
      await Promise.all(ws.map((w) => w.stop()));
      await Promise.all(pools.map((p) => p.destroy()));
    },
  };
}

async function agentPush(
  o: BenchOptions,
  agents: readonly RealAgent[],
  components: Components,
  cpu: PhaseCpu[],
  problems: string[],
): Promise<PushRun> {
  const origin = agents[0];
  if (origin === undefined) throw new Error('no agents');
  await origin.register(PUSH_SERVICE, 'flip', 8080, { seq: '0' });
  await until(
    'every agent to serve the pushed instance',
    async () => (await Promise.all(agents.map((a) => a.health(PUSH_SERVICE)))).every((h) => h.count === 1),
    30_000,
    50,
  );
  const { ws, close } = await watchersOn(agents, PUSH_SERVICE, o.a50WatchersPerAgent, false);
  try {
    await sleep(500);
    const target = blockingTarget(ws, (flip) =>
      origin.register(PUSH_SERVICE, 'flip', 8080, { seq: String(flip) }),
    );
    const { result, cpu: phase } = await measured(
      components,
      `${SCOPE} push`,
      'watcher × change',
      () => ws.length * o.a50Changes,
      () => timeFlips('meshreg', SCOPE, o.a50Changes, target, problems),
    );
    cpu.push(phase);
    progress(SCOPE, `meshreg push to ${ws.length} watchers: p99 ${summarize(result.last).p99.toFixed(1)} ms`);
    return result;
  } finally {
    await close();
  }
}

async function leave(
  o: BenchOptions,
  agents: readonly RealAgent[],
  components: Components,
  cpu: PhaseCpu[],
): Promise<number> {
  const host = agents[agents.length - 1];
  if (host === undefined) throw new Error('no agents');
  const ids = Array.from({ length: o.a50DeregInstances }, (_, i) => `leave-${i}`);
  await inParallel(ids.length, 32, (i) => host.register(LEAVE_SERVICE, ids[i] ?? '', 20_000 + i));
  // The host leaves (and exits), so the watchers are on every other agent.
  const { ws, close } = await watchersOn(
    agents.filter((a) => a !== host),
    LEAVE_SERVICE,
    1,
    true,
  );
  try {
    await until(
      'every watcher to see every instance',
      () => ws.every((w) => w.count === ids.length),
      60_000,
      10,
    );
    let gone = 0;
    let lastAt = 0;
    for (const w of ws) {
      let done = false;
      w.onResult = (r) => {
        if (done || r.count !== 0) return;
        done = true;
        gone++;
        lastAt = r.at;
      };
    }
    // The host's process exits during the phase, so its CPU cannot be read after it: counted are the
    // agents that receive the change (the host's own cost is one batch of withdrawals).
    const receivers = { ...components, agents: agents.filter((a) => a !== host).map((a) => a.pid) };
    const { result, cpu: phase } = await measured(
      receivers,
      `${SCOPE} leave`,
      'removed instance',
      () => ids.length,
      async () => {
        const start = performance.now();
        if (!(await host.leave())) throw new Error('the agent refused to leave');
        await until(
          'every watcher to see them gone',
          () => gone >= ws.length,
          60_000,
          1,
          () => `${gone} of ${ws.length}`,
        );
        return lastAt - start;
      },
    );
    cpu.push(phase);
    progress(
      SCOPE,
      `meshreg: ${ids.length} instances gone from every watcher after ${Math.round(result)} ms`,
    );
    return result;
  } finally {
    await close();
  }
}

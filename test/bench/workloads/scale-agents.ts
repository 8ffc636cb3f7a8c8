/**
 * Workload scale-agents, the scale workload through real agents (issue #19's setting): one
 * `meshreg server` process (meta, data and session together) and A real `meshreg agent` processes,
 * each loading its share of N instances through the Consul API (`PUT /v1/agent/service/register`,
 * K requests in flight per agent) while W blocking-query watchers per agent read services of
 * S instances each. Nothing is ever deregistered, so:
 * - a watcher's answer with fewer instances than it already saw is a list that shrank;
 * - once loaded and settled, R plain reads spread over the agents must each return the whole service;
 * - the server's log must show no member expiry and no session's publishers dropped.
 * The server's stalls are read from outside by the latency of `GET /health` polled every 100 ms.
 */
import { startCluster, type Cluster } from '../cluster.js';
import { measured, type PhaseCpu } from '../cpu.js';
import type { BenchOptions } from '../options.js';
import { progress, until } from '../progress.js';
import { budget, type Metric, type WorkloadResult } from '../report.js';
import { BlockingWatcher, startAgents, type RealAgent } from '../real-agent.js';
import { serverEvents, StallProbe, type ServerEvents } from '../server-watch.js';
import type { Summary } from '../stats.js';
import { inParallel } from './agent1.js';
import { side } from './common.js';

const SCOPE = 'scale-agents';

/**
 * The product's own leases and graces, not the bench's roomier ones: this workload is the issue's
 * setting, a new user's `meshreg server` under load.
 */
const DEFAULT_TIMING: Readonly<Record<string, string>> = {
  MESHREG_META_LEASE_MS: '5000',
  MESHREG_HEARTBEAT_MS: '1000',
  MESHREG_DATA_SESSION_GRACE_MS: '10000',
  MESHREG_SESSION_CLIENT_GRACE_MS: '5000',
};

interface Run {
  readonly instances: number;
  readonly loadMs: number;
  readonly settleMs: number;
  readonly shrunk: number;
  readonly answers: number;
  readonly reads: number;
  readonly shortReads: number;
  readonly shortMean: number;
  readonly failedRegistrations: number;
  /** Registrations the session accepted, re-sends by agents included (each instance once is N). */
  readonly publishes: number;
  readonly events: ServerEvents;
  readonly health: Summary;
}

/** Which service instance k belongs to, and how many instances each service ends with. */
function layout(o: BenchOptions): {
  services: number;
  of: (k: number) => string;
  size: (s: string) => number;
} {
  const total = o.saAgents * o.saPerAgent;
  const services = Math.max(1, Math.floor(total / o.saServiceSize));
  const name = (s: number): string => `sa-svc-${s}`;
  const sizes = new Map<string, number>();
  for (let k = 0; k < total; k++) sizes.set(name(k % services), (sizes.get(name(k % services)) ?? 0) + 1);
  return { services, of: (k) => name(k % services), size: (s) => sizes.get(s) ?? 0 };
}

export async function scaleAgents(o: BenchOptions): Promise<WorkloadResult> {
  const t0 = performance.now();
  const problems: string[] = [];
  const cpu: PhaseCpu[] = [];
  const run = await side('meshreg', problems, o.workloadTimeoutMs * 3, async (cleanups) => {
    // Info level: member joins, expiries, dropped publishers and agent reconnects are what is read.
    const cluster = await startCluster({
      split: false,
      env: { ...DEFAULT_TIMING, MESHREG_DATA_WARMUP_MS: '200', MESHREG_LOG_LEVEL: 'info' },
    });
    cleanups.push(() => {
      problems.push(...cluster.problems());
      return cluster.stop();
    });
    const agents = await startAgents('sa', o.saAgents, cluster.url, o.saInflight, (a) =>
      cleanups.push(() => a.stop()),
    );
    progress(SCOPE, `${agents.length} agents started`);
    return loadAndRead(o, cluster, agents, cpu, problems);
  });
  return {
    workload: SCOPE,
    metrics: metrics(o, run),
    distributions: run === undefined ? {} : { 'server GET /health latency during the run (ms)': run.health },
    notes: notes(o, run),
    problems,
    durationMs: performance.now() - t0,
    cpu,
  };
}

async function loadAndRead(
  o: BenchOptions,
  cluster: Cluster,
  agents: readonly RealAgent[],
  cpu: PhaseCpu[],
  problems: string[],
): Promise<Run> {
  const lay = layout(o);
  const server = cluster.procs['server'];
  if (server === undefined) throw new Error('no server process');
  const probe = new StallProbe(
    cluster.url.replace(/^ws/, 'http').replace(/^(https?:\/\/[^/]+).*$/, '$1/health'),
  );
  const watched = agents.flatMap((a, i) =>
    Array.from({ length: o.saWatchers }, (_, w) => ({ agent: a, service: lay.of(i * o.saWatchers + w) })),
  );
  const watchers = watched.map(({ agent, service }) => new BlockingWatcher(agent.pool, service, true));
  let shrunk = 0;
  let answers = 0;
  for (const w of watchers) {
    let seen = 0;
    w.onResult = (r) => {
      answers++;
      if (r.count >= 0 && r.count < seen) shrunk++;
      seen = Math.max(seen, r.count);
    };
  }
  try {
    await Promise.all(watchers.map((w) => w.start()));
    const { result, cpu: phase } = await measured(
      { server: [server.child.pid ?? 0], agents: agents.map((a) => a.pid) },
      `${SCOPE} load`,
      'registration',
      () => o.saAgents * o.saPerAgent,
      () => load(o, agents, lay.of),
    );
    cpu.push(phase);
    if (result.failed > 0) problems.push(`meshreg: ${result.failed} registrations failed`);
    const settleMs = await until(
      'every watcher to hold its whole service',
      () => watchers.every((w, i) => w.count >= lay.size(watched[i]?.service ?? '')),
      o.workloadTimeoutMs,
      50,
      () =>
        `${watchers.filter((w, i) => w.count >= lay.size(watched[i]?.service ?? '')).length} of ${watchers.length}`,
    ).catch((err: unknown) => {
      problems.push(`meshreg: ${err instanceof Error ? err.message : String(err)}`);
      return NaN;
    });
    const reads = await readAll(o, watched, lay.size);
    const publishes = await cluster.sessionMetric('meshreg_session_publishes_total');
    await Promise.all(watchers.map((w) => w.stop()));
    const events = serverEvents(server.logs());
    progress(SCOPE, `server events: ${JSON.stringify(events)}`);
    return {
      instances: o.saAgents * o.saPerAgent,
      loadMs: result.ms,
      settleMs,
      shrunk,
      answers,
      ...reads,
      failedRegistrations: result.failed,
      publishes,
      events,
      health: await probe.stop(),
    };
  } finally {
    await Promise.all(watchers.map((w) => w.stop()));
    await probe.stop();
  }
}

/** Every agent registers its share (instance k on agent k mod A), K requests in flight each. */
async function load(
  o: BenchOptions,
  agents: readonly RealAgent[],
  serviceOf: (k: number) => string,
): Promise<{ ms: number; failed: number }> {
  const total = o.saAgents * o.saPerAgent;
  const start = performance.now();
  let done = 0;
  let next = 0.1;
  const failed = await Promise.all(
    agents.map((agent, a) =>
      inParallel(o.saPerAgent, o.saInflight, async (j) => {
        const k = a + j * agents.length;
        const ok = await agent.register(serviceOf(k), `sa-${k}`, 10_000 + (k % 50_000));
        if (++done >= next * total) {
          progress(SCOPE, `${done} of ${total} registered (${Math.round(performance.now() - start)} ms)`);
          next += 0.1;
        }
        return ok;
      }),
    ),
  );
  return { ms: performance.now() - start, failed: failed.reduce((x, y) => x + y, 0) };
}

/** R plain reads over the watched (agent, service) pairs, each expected to return the whole service. */
async function readAll(
  o: BenchOptions,
  watched: readonly { agent: RealAgent; service: string }[],
  size: (s: string) => number,
): Promise<{ reads: number; shortReads: number; shortMean: number }> {
  let shortReads = 0;
  let shortSum = 0;
  await inParallel(o.saReads, 8, async (r) => {
    const pair = watched[r % watched.length];
    if (pair === undefined) return false;
    const { count } = await pair.agent.health(pair.service);
    if (count < size(pair.service)) {
      shortReads++;
      shortSum += count;
    }
    return true;
  });
  progress(SCOPE, `${shortReads} of ${o.saReads} reads short`);
  return { reads: o.saReads, shortReads, shortMean: shortReads === 0 ? NaN : shortSum / shortReads };
}

function metrics(o: BenchOptions, r: Run | undefined): Metric[] {
  const zero = (name: string, unit: string, v: number | undefined): Metric => ({
    name,
    unit,
    better: 'lower',
    meshreg: v,
    etcd: undefined,
    target: budget(v, 'lower', 0, '0'),
  });
  const e = r?.events;
  return [
    {
      name: `load rate, ${o.saAgents} agents × ${o.saPerAgent}`,
      unit: '1/s',
      better: 'higher',
      meshreg: r === undefined ? undefined : (r.instances / r.loadMs) * 1000,
      etcd: undefined,
    },
    zero(`short reads of ${o.saReads} after the load`, 'reads', r?.shortReads),
    zero('watch answers shorter than one seen before', 'answers', r?.shrunk),
    zero('member lease expiries during the run', 'count', e?.memberExpiries),
    zero("live session's publishers dropped by data", 'count', e?.publishersDropped),
    {
      name: 'agent reconnects',
      unit: 'count',
      better: 'lower',
      meshreg: e?.agentReconnects,
      etcd: undefined,
    },
    {
      name: 'registrations re-sent by agents',
      unit: 'count',
      better: 'lower',
      meshreg: r === undefined ? undefined : r.publishes - r.instances,
      etcd: undefined,
    },
    {
      name: 'server stall: slowest GET /health',
      unit: 'ms',
      better: 'lower',
      meshreg: r?.health.max,
      etcd: undefined,
    },
  ];
}

function notes(o: BenchOptions, r: Run | undefined): string[] {
  const out = [
    `one meshreg server process (meta, data, session) and ${o.saAgents} real agents; ${o.saPerAgent} instances per agent through PUT /v1/agent/service/register, ${o.saInflight} in flight per agent, in services of ${o.saServiceSize}`,
    `${o.saWatchers} blocking-query watchers per agent count every answer; after the load settles, ${o.saReads} plain reads over the watched services must each return the whole service`,
    'expiries, dropped publishers and agent reconnects are counted from the server log (info level); stalls from the latency of GET /health polled every 100 ms',
  ];
  if (r !== undefined) {
    out.push(
      `settled ${Math.round(r.settleMs)} ms after the load; ${r.answers} watch answers; close codes of agent links: ${JSON.stringify(r.events.agentCloseCodes)}; member rejoins ${r.events.memberRejoins}`,
    );
    if (r.shortReads > 0) out.push(`short reads held ${r.shortMean.toFixed(1)} instances on average`);
  }
  return out;
}

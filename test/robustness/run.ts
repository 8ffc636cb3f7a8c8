/**
 * The robustness runner: `npm run robustness -- --seed N --schedules K [--duration S] [--dump FILE]
 * [--logs DIR]` (`--dump` writes every schedule's history as JSON, `--logs` the processes' logs of
 * each failing schedule).
 *
 * Starts a live cluster (etcd, 3 metas, 2 data servers, 2 sessions, 4 agents, a fault proxy on every
 * link), then plays K random fault schedules drawn from seeds N, N+1, …: each one runs the load and
 * the recorders, injects its faults over S seconds, heals everything, waits for convergence and checks
 * the recorded history. Prints a summary table, and for every failing seed its violations with a
 * history excerpt; exits non-zero on any violation. Clock skew of a data server's version clock is not
 * injected here (the data server has no test hook for it; the version-clock tests cover skew).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkHistory, INVARIANTS, type Violation } from './checker.js';
import { startCluster, type Cluster } from './cluster.js';
import { newHistory, type History } from './history.js';
import { describeFault, drawSchedule, healAll, playSchedule, Random } from './schedule.js';
import { call, idsOf, localRegistrations, SERVICES, Workload } from './workload.js';

/** Every subscriber must show exactly the registered set this long after the heal. */
export const CONVERGE_BOUND_MS = 20_000;

/** What to run: schedules from seeds `seed`, `seed + 1`, …, each `durationS` seconds of faults. */
export interface RunOptions {
  readonly seed: number;
  readonly schedules: number;
  /** Exact seeds to run instead of `seed`, `seed + 1`, … (`schedules` is then ignored). */
  readonly seeds?: readonly number[];
  /** Seconds of faults per schedule. */
  readonly durationS: number;
  readonly log?: (line: string) => void;
  /** Where to write every process's log of a failing schedule (`--logs DIR`). */
  readonly logsDir?: string;
}

/** One schedule's outcome: its faults, convergence time, violations and the whole history. */
export interface ScheduleResult {
  readonly seed: number;
  readonly faults: readonly string[];
  readonly convergedMs: number | undefined;
  /** When it did not converge: each agent's link and how many of its registrations are not in sync. */
  readonly diagnosis: readonly string[];
  readonly violations: readonly Violation[];
  readonly history: History;
}

/**
 * Runs the schedules and returns one result per schedule. A schedule that breaks an invariant may
 * leave the cluster in a state the next one would inherit, so the cluster is started afresh after it.
 */
export async function runRobustness(opts: RunOptions): Promise<ScheduleResult[]> {
  const log = opts.log ?? ((l: string) => void process.stdout.write(`${l}\n`));
  const fresh = async (): Promise<Cluster> => {
    const c = await startCluster({ metas: 3, datas: 2, sessions: 2, agents: 4 });
    await settle(c);
    return c;
  };
  let cluster = await fresh();
  const results: ScheduleResult[] = [];
  try {
    let seq = 0;
    const seeds = opts.seeds ?? Array.from({ length: opts.schedules }, (_, k) => opts.seed + k);
    for (const [k, seed] of seeds.entries()) {
      const r = await runOne(cluster, seed, opts.durationS * 1000, seq);
      seq = r.seq;
      results.push(r.result);
      log(row(r.result));
      if (r.result.violations.length > 0 && opts.logsDir !== undefined)
        writeLogs(cluster, opts.logsDir, seed);
      if (r.result.violations.length > 0 && k + 1 < seeds.length) {
        await cluster.stop();
        cluster = await fresh();
      }
    }
  } finally {
    await cluster.stop();
  }
  log(summary(results));
  return results;
}

/** Every process's log lines of a failing schedule, one file per process (`--logs DIR`). */
function writeLogs(cluster: Cluster, dir: string, seed: number): void {
  mkdirSync(dir, { recursive: true });
  for (const m of cluster.members) writeFileSync(path.join(dir, `seed-${seed}-${m.name}.log`), m.logs());
}

async function runOne(
  cluster: Cluster,
  seed: number,
  windowMs: number,
  seq: number,
): Promise<{ result: ScheduleResult; seq: number }> {
  const rng = new Random(seed);
  const faults = drawSchedule(rng, cluster, windowMs);
  const h = newHistory(seed, CONVERGE_BOUND_MS, cluster.sessionGraceMs);
  const agents = cluster.members.filter((m) => m.role === 'agent');
  const registered = await localRegistrations(agents);
  // What the agents hold at the start counts as registered just before it.
  for (const [id, r] of registered)
    h.ops.push({ kind: 'register', start: h.startedAt - 1, end: h.startedAt - 1, id, ...r, ok: true });
  const load = new Workload(cluster, h, rng, registered, seq);
  load.start();
  try {
    await playSchedule(cluster, faults, h);
    await healAll(cluster, h);
    await load.stopLoad();
    h.healedAt = Date.now();
    const convergedMs = await converge(cluster, h);
    recordElections(cluster, h);
    const diagnosis = convergedMs === undefined ? await syncDiagnosis(cluster) : [];
    const violations = checkHistory(h, { leaderOverlapMs: (cluster.etcdTtlS * 1000) / 2 });
    return {
      result: { seed, faults: faults.map(describeFault), convergedMs, diagnosis, violations, history: h },
      seq: load.seq,
    };
  } finally {
    await load.stop();
  }
}

/** Polls every agent for every service until each answers what the agents hold (or the bound passes). */
async function converge(cluster: Cluster, h: History): Promise<number | undefined> {
  const agents = cluster.members.filter((m) => m.role === 'agent');
  for (let round = 0; Date.now() - h.healedAt < CONVERGE_BOUND_MS + 1000; round++) {
    await new Promise((r) => setTimeout(r, round === 0 ? 0 : 250));
    let truth;
    try {
      truth = await localRegistrations(agents);
    } catch {
      continue;
    }
    let all = true;
    for (const a of agents)
      for (const service of SERVICES) {
        const want = [...truth]
          .filter(([, r]) => r.service === service)
          .map(([id]) => id)
          .sort();
        try {
          const res = await call('GET', `${a.httpUrl}/v1/health/service/${service}`);
          const ids = idsOf(res.body);
          h.observations.push({
            time: Date.now(),
            subscriber: `${a.name}#${a.incarnation}/${service}/poll`,
            agent: a.name,
            service,
            via: 'poll',
            index: res.index,
            ids,
          });
          if (ids.join() !== want.join()) all = false;
        } catch {
          all = false;
        }
      }
    if (all) return Date.now() - h.healedAt;
  }
  return undefined;
}

/** Each agent's view of its link: connected or not, registrations not in sync, removals pending. */
async function syncDiagnosis(cluster: Cluster): Promise<string[]> {
  const out: string[] = [];
  for (const a of cluster.members.filter((m) => m.role === 'agent')) {
    try {
      const b = (await call('GET', `${a.httpUrl}/v1/meshreg/sync-status`)).body as {
        connected?: boolean;
        services?: { InSync?: boolean }[];
        pendingRemovals?: unknown[];
      };
      const notInSync = (b.services ?? []).filter((x) => x.InSync !== true).length;
      out.push(
        `${a.name}: connected ${String(b.connected)}, ${notInSync}/${(b.services ?? []).length} registrations not in sync, ${(b.pendingRemovals ?? []).length} removals pending`,
      );
    } catch (err) {
      out.push(`${a.name}: no sync-status (${String(err)})`);
    }
  }
  return out;
}

/** Waits until the metas have one leader with a table, so the first schedule starts from a whole cluster. */
async function settle(cluster: Cluster): Promise<void> {
  const metas = cluster.members.filter((m) => m.role === 'meta');
  for (let i = 0; i < 150; i++) {
    const leaders = await Promise.all(
      metas.map(async (m) => {
        try {
          const b = (await call('GET', `${m.httpUrl}/health`)).body as { leader?: boolean; epoch?: number };
          return b.leader === true && (b.epoch ?? 0) > 0;
        } catch {
          return false;
        }
      }),
    );
    if (leaders.filter(Boolean).length === 1) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('no single meta leader with a slot table within 30 s');
}

function row(r: ScheduleResult): string {
  const bad = new Set(r.violations.map((v) => v.invariant));
  const marks = INVARIANTS.map((i) => `${i}:${bad.has(i) ? 'FAIL' : 'ok'}`).join(' ');
  const conv = r.convergedMs === undefined ? 'no' : `${(r.convergedMs / 1000).toFixed(1)}s`;
  const h = r.history;
  const known = h.tableWrites.filter((w) => w.writer !== 'unknown').length;
  const size = `ops ${h.ops.length} answers ${h.observations.length} table writes ${h.tableWrites.length} (${known} attributed) two-leader polls ${dualLeaderPolls(h)}`;
  return `seed ${r.seed} | converged ${conv} | ${marks} | ${size} | ${r.faults.join(', ')}`;
}

/** The metas' "elected meta leader" log lines of this schedule, into the history (for excerpts). */
function recordElections(cluster: Cluster, h: History): void {
  for (const m of cluster.members.filter((x) => x.role === 'meta'))
    for (const line of m.logs().split('\n')) {
      if (!line.includes('"elected meta leader"')) continue;
      const time = Date.parse((JSON.parse(line) as { time: string }).time);
      if (time >= h.startedAt) h.elections.push({ time, meta: m.name });
    }
}

/** Meta `/health` poll rounds (250 ms apart) in which more than one meta said it leads. */
function dualLeaderPolls(h: History): number {
  const rounds = new Map<number, number>();
  for (const p of h.leaderPolls)
    if (p.leader) rounds.set(Math.floor(p.time / 250), (rounds.get(Math.floor(p.time / 250)) ?? 0) + 1);
  return [...rounds.values()].filter((n) => n > 1).length;
}

/** The summary table, then every failing seed with its violations and excerpts. */
export function summary(results: readonly ScheduleResult[]): string {
  const lines = ['', `schedules: ${results.length}`, ...results.map(row)];
  const faultKinds = new Set(
    results.flatMap((r) => r.faults.map((f) => f.split(' ')[0]?.replace(/\(.*\)/, ''))),
  );
  lines.push(`faults covered: ${[...faultKinds].sort().join(', ')}`);
  for (const i of INVARIANTS) {
    const failing = results.filter((r) => r.violations.some((v) => v.invariant === i)).map((r) => r.seed);
    lines.push(`${i}: ${failing.length === 0 ? 'held' : `FAILED in seeds ${failing.join(', ')}`}`);
  }
  for (const r of results.filter((x) => x.violations.length > 0)) {
    lines.push('', `FAILING SEED ${r.seed} (faults: ${r.faults.join(', ')})`);
    for (const d of r.diagnosis) lines.push(`  sync: ${d}`);
    for (const v of r.violations.slice(0, 5))
      lines.push(`  [${v.invariant}] ${v.message}`, ...v.excerpt.map((l) => `      ${l}`));
    if (r.violations.length > 5) lines.push(`  … and ${r.violations.length - 5} more`);
  }
  return lines.join('\n');
}

function parseArgs(argv: readonly string[]): RunOptions {
  const get = (name: string, dflt: number): number => {
    const i = argv.indexOf(`--${name}`);
    const v = i < 0 ? dflt : Number(argv[i + 1]);
    if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a whole number`);
    return v;
  };
  const logs = argv.indexOf('--logs');
  const logsDir = logs < 0 ? undefined : argv[logs + 1];
  return {
    seed: get('seed', 1),
    schedules: get('schedules', 5),
    durationS: get('duration', 15),
    ...(logsDir === undefined ? {} : { logsDir }),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await runRobustness(parseArgs(process.argv.slice(2)));
  const i = process.argv.indexOf('--dump');
  const dump = i < 0 ? undefined : process.argv[i + 1];
  if (dump !== undefined) await writeFile(dump, JSON.stringify(results.map((r) => r.history)));
  process.exit(results.some((r) => r.violations.length > 0) ? 1 : 0);
}

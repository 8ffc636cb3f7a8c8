/**
 * Random fault schedules, reproducible by seed: a small PRNG, the faults a schedule can hold, how
 * they are drawn, and how one is played against the live cluster (recording each step).
 */
import type { Direction } from '../support/fault-proxy.js';
import type { Cluster } from './cluster.js';
import type { History } from './history.js';

/** mulberry32: a tiny seeded PRNG, good enough to draw schedules. */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T | undefined {
    return items[Math.floor(this.next() * items.length)];
  }
}

/** What a fault does: kill -9 then restart, SIGSTOP then SIGCONT, or a proxy fault. */
export type FaultKind = 'kill' | 'stop' | 'blackhole' | 'delay' | 'throttle' | 'cut';

/** One fault of a schedule, in milliseconds from the schedule's start. */
export interface Fault {
  readonly kind: FaultKind;
  /** A member (`kill`, `stop`) or a proxy (`etcd<-meta-1`, `meta-1`, `data-1`, `session-1`). */
  readonly target: string;
  readonly atMs: number;
  readonly durationMs: number;
  readonly dir: Direction;
  /** Delay in ms or throttle in bytes/s. */
  readonly amount: number;
}

/** How a fault reads in a summary: `blackhole-up session-1 @1.2s+4.0s`. */
export function describeFault(f: Fault): string {
  const what =
    f.kind === 'delay' || f.kind === 'throttle'
      ? `${f.kind}(${f.amount})-${f.dir}`
      : f.kind === 'blackhole'
        ? `blackhole-${f.dir}`
        : f.kind;
  return `${what} ${f.target} @${(f.atMs / 1000).toFixed(1)}s+${(f.durationMs / 1000).toFixed(1)}s`;
}

/** The group a target disturbs: at most one fault per group, and one disturbed session and data server. */
const groupOf = (target: string): string => target;
const disrupts = (f: Fault): boolean => f.kind === 'kill' || f.kind === 'stop' || f.kind === 'blackhole';

/**
 * Draws 2–4 faults within `windowMs` over the cluster's members and proxies. Never both sessions or
 * both data servers are disturbed in one schedule (the registry's promise needs one of each), and at
 * most one agent is killed.
 */
export function drawSchedule(
  rng: Random,
  cluster: Pick<Cluster, 'members' | 'proxies'>,
  windowMs: number,
): Fault[] {
  const processes = cluster.members.map((m) => m.name);
  const stoppable = cluster.members.filter((m) => m.role !== 'agent').map((m) => m.name);
  const proxies = [...cluster.proxies.keys()];
  const sessionProxies = proxies.filter((p) => p.startsWith('session-') || p.startsWith('data-'));
  const faults: Fault[] = [];
  const want = rng.int(2, 4);
  for (let tries = 0; faults.length < want && tries < 50; tries++) {
    const kind = rng.pick<FaultKind>(['kill', 'stop', 'blackhole', 'delay', 'throttle', 'cut']) ?? 'cut';
    const pool =
      kind === 'kill'
        ? processes
        : kind === 'stop'
          ? stoppable
          : kind === 'throttle'
            ? sessionProxies
            : proxies;
    const target = rng.pick(pool) ?? '';
    const durationMs = kind === 'cut' ? 0 : rng.int(1500, Math.min(8000, windowMs - 1000));
    const atMs = rng.int(500, Math.max(500, windowMs - durationMs));
    const dir = kind === 'throttle' ? 'down' : (rng.pick<Direction>(['up', 'down', 'both']) ?? 'both');
    const amount = kind === 'delay' ? rng.int(50, 800) : kind === 'throttle' ? rng.int(2000, 20_000) : 0;
    const f: Fault = { kind, target, atMs, durationMs, dir, amount };
    if (faults.some((x) => groupOf(x.target) === groupOf(target))) continue;
    const family = (t: string): string => t.replace(/-\d+$/, '');
    if (
      disrupts(f) &&
      ['session', 'data', 'agent'].includes(family(target)) &&
      faults.some((x) => disrupts(x) && family(x.target) === family(target))
    )
      continue;
    faults.push(f);
  }
  return faults.sort((a, b) => a.atMs - b.atMs);
}

/** Plays `faults` against the cluster (times from now), recording each start and end in `h`. */
export async function playSchedule(cluster: Cluster, faults: readonly Fault[], h: History): Promise<void> {
  const t0 = Date.now();
  const steps: { at: number; run: () => Promise<void> }[] = [];
  for (const f of faults) {
    steps.push({ at: f.atMs, run: () => begin(cluster, f, h) });
    if (f.kind !== 'cut') steps.push({ at: f.atMs + f.durationMs, run: () => end(cluster, f, h) });
  }
  steps.sort((a, b) => a.at - b.at);
  const running: Promise<void>[] = [];
  for (const s of steps) {
    const wait = t0 + s.at - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    running.push(s.run());
  }
  await Promise.all(running);
}

const label = (f: Fault): string =>
  f.kind === 'blackhole' || f.kind === 'delay' || f.kind === 'throttle' ? `${f.kind}-${f.dir}` : f.kind;

async function begin(cluster: Cluster, f: Fault, h: History): Promise<void> {
  h.faults.push({
    time: Date.now(),
    phase: f.kind === 'cut' ? 'instant' : 'start',
    what: label(f),
    target: f.target,
  });
  const proxy = cluster.proxies.get(f.target);
  switch (f.kind) {
    case 'kill': {
      const m = cluster.byName(f.target);
      if (m.role === 'agent') h.agents.push({ time: Date.now(), agent: m.name, phase: 'killed' });
      await m.kill();
      return;
    }
    case 'stop':
      cluster.byName(f.target).signal('SIGSTOP');
      return;
    case 'blackhole':
      proxy?.blackhole(f.dir);
      return;
    case 'delay':
      proxy?.delay(f.amount, f.dir);
      return;
    case 'throttle':
      proxy?.throttle(f.amount, f.dir);
      return;
    case 'cut':
      proxy?.cut();
      return;
    default: {
      const never: never = f.kind;
      throw new Error(`unknown fault ${String(never)}`);
    }
  }
}

async function end(cluster: Cluster, f: Fault, h: History): Promise<void> {
  if (f.kind === 'kill') {
    const m = cluster.byName(f.target);
    await m.restart();
    if (m.role === 'agent') h.agents.push({ time: Date.now(), agent: m.name, phase: 'restarted' });
  } else if (f.kind === 'stop') cluster.byName(f.target).signal('SIGCONT');
  else cluster.proxies.get(f.target)?.heal();
  h.faults.push({ time: Date.now(), phase: 'end', what: label(f), target: f.target });
}

/** Heals every proxy and brings every member back up (a safety net after a schedule). */
export async function healAll(cluster: Cluster, h: History): Promise<void> {
  for (const p of cluster.proxies.values()) p.heal();
  for (const m of cluster.members) {
    if (m.state === 'stopped') m.signal('SIGCONT');
    if (m.state === 'killed') {
      await m.restart();
      if (m.role === 'agent') h.agents.push({ time: Date.now(), agent: m.name, phase: 'restarted' });
    }
  }
  h.faults.push({ time: Date.now(), phase: 'instant', what: 'heal-all', target: '*' });
}

/**
 * CPU time and resident memory per component (agents, session, data, meta, the load process, etcd),
 * read from /proc: utime + stime of `/proc/<pid>/stat` in clock ticks, VmRSS of `/proc/<pid>/status`.
 * A workload takes a snapshot before and after a measured phase; the difference divided by the
 * phase's operations is the CPU each component spent per operation. CPU time is what a shared,
 * noisy 2-core machine does not inflate the way it inflates wall time.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rssBytes } from './processes.js';

let ticksPerSec: number | undefined;

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`, 100 on Linux almost always). */
export function clockTicksPerSec(): number {
  if (ticksPerSec === undefined) {
    try {
      const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      ticksPerSec = Number.isFinite(v) && v > 0 ? v : 100;
    } catch {
      ticksPerSec = 100;
    }
  }
  return ticksPerSec;
}

/** CPU time (user + system) a process has used so far, in ms; undefined when it is gone. */
export function cpuMs(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the name: state is field 3, so utime (14) and stime (15) are at offsets 11 and 12.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? (ticks * 1000) / clockTicksPerSec() : undefined;
}

/** The processes that make up one component ("agents": every agent process; "session": one). */
export type Components = Record<string, readonly number[]>;

/** CPU ms and RSS bytes of each component at one moment (sums over its processes). */
export interface CpuSnapshot {
  readonly cpuMs: Record<string, number>;
  readonly rssBytes: Record<string, number>;
}

/** Reads every component's CPU time and RSS now. */
export async function snapshot(components: Components): Promise<CpuSnapshot> {
  const cpu: Record<string, number> = {};
  const rss: Record<string, number> = {};
  for (const [name, pids] of Object.entries(components)) {
    let c = 0;
    let r = 0;
    for (const pid of pids) {
      c += cpuMs(pid) ?? 0;
      r += (await rssBytes(pid)) ?? 0;
    }
    cpu[name] = c;
    rss[name] = r;
  }
  return { cpuMs: cpu, rssBytes: rss };
}

/** CPU spent by each component in one measured phase, per operation of that phase. */
export interface PhaseCpu {
  /** Which workload phase ("agents50 registration"). */
  readonly phase: string;
  /** What one operation is ("registration", "watcher × change"). */
  readonly op: string;
  readonly ops: number;
  /** CPU µs per operation by component. */
  readonly usPerOp: Record<string, number>;
  /** CPU ms in total by component over the phase. */
  readonly cpuMs: Record<string, number>;
  /** RSS by component at the end of the phase. */
  readonly rssBytes: Record<string, number>;
}

/** The difference of two snapshots, divided by `ops`. */
export function phaseCpu(
  phase: string,
  op: string,
  ops: number,
  before: CpuSnapshot,
  after: CpuSnapshot,
): PhaseCpu {
  const usPerOp: Record<string, number> = {};
  const total: Record<string, number> = {};
  for (const [name, end] of Object.entries(after.cpuMs)) {
    const spent = end - (before.cpuMs[name] ?? 0);
    total[name] = spent;
    usPerOp[name] = ops > 0 ? (spent * 1000) / ops : NaN;
  }
  return { phase, op, ops, usPerOp, cpuMs: total, rssBytes: after.rssBytes };
}

/**
 * Measures `body` as one phase: snapshots `components` (plus the load process as "load") around
 * it. `ops` may be known only afterwards, so it is a function of the body's result.
 */
export async function measured<T>(
  components: Components,
  phase: string,
  op: string,
  ops: (result: T) => number,
  body: () => Promise<T>,
): Promise<{ result: T; cpu: PhaseCpu }> {
  const all = { ...components, load: [process.pid] };
  const before = await snapshot(all);
  const result = await body();
  const after = await snapshot(all);
  return { result, cpu: phaseCpu(phase, op, ops(result), before, after) };
}

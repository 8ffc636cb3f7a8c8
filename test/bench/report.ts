/**
 * Results: each workload yields metrics measured on meshreg and, where it makes sense, on etcd in
 * the same run. The ratio is always meshreg ÷ etcd, so below 1 is better for "lower is better"
 * metrics and above 1 is better for "higher is better" ones.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { PhaseCpu } from './cpu.js';
import { round, type Summary } from './stats.js';

export interface Target {
  /** What the budget says, in words ("≤ 50 ms"). */
  readonly text: string;
  readonly met: boolean;
  /** How far off when missed, in words. */
  readonly miss?: string;
}

export interface Metric {
  readonly name: string;
  readonly unit: string;
  readonly better: 'lower' | 'higher';
  readonly meshreg: number | undefined;
  readonly etcd: number | undefined;
  readonly target?: Target;
}

export interface WorkloadResult {
  readonly workload: string;
  readonly metrics: Metric[];
  /** Full distributions behind the metrics, by label ("meshreg push latency"). */
  readonly distributions: Record<string, Summary>;
  /** How the numbers were taken (load model, parameters). */
  readonly notes: string[];
  /** Anything that went wrong on either side: errors, crashes, wrong results. */
  readonly problems: string[];
  readonly durationMs: number;
  /** CPU per operation and RSS by component, per measured phase (meshreg's and etcd's). */
  readonly cpu?: PhaseCpu[];
}

export function ratio(m: Metric): number | undefined {
  if (m.meshreg === undefined || m.etcd === undefined || m.etcd === 0) return undefined;
  return m.meshreg / m.etcd;
}

/** A budget "value ≤ limit" (or ≥ for higher-is-better), with the miss described when missed. */
export function budget(
  value: number | undefined,
  better: 'lower' | 'higher',
  limit: number,
  text: string,
): Target {
  if (value === undefined || !Number.isFinite(value)) return { text, met: false, miss: 'not measured' };
  const met = better === 'lower' ? value <= limit : value >= limit;
  if (met) return { text, met };
  if (limit === 0) return { text, met, miss: `${fmt(value)} over` };
  const pct = better === 'lower' ? (value / limit - 1) * 100 : (1 - value / limit) * 100;
  return { text, met, miss: `missed by ${round(pct, 0)}%` };
}

function fmt(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '—';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** The human table, one row per metric. */
export function renderTable(results: readonly WorkloadResult[]): string {
  const rows: string[][] = [['workload', 'metric', 'meshreg', 'etcd', 'ratio', 'target', 'met']];
  for (const r of results) {
    for (const m of r.metrics) {
      const q = ratio(m);
      rows.push([
        r.workload,
        `${m.name} (${m.unit})`,
        fmt(m.meshreg),
        fmt(m.etcd),
        q === undefined ? '—' : `${q.toFixed(2)}×`,
        m.target?.text ?? '',
        m.target === undefined ? '' : m.target.met ? 'yes' : `NO ${m.target.miss ?? ''}`.trim(),
      ]);
    }
  }
  const out = [table(rows)];
  const cpu = renderCpuTable(results);
  if (cpu !== '') out.push('', cpu);
  const problems = results.flatMap((r) => r.problems.map((p) => `  ! ${r.workload}: ${p}`));
  if (problems.length > 0) out.push('', 'Problems seen:', ...problems);
  return out.join('\n');
}

const COMPONENTS = ['agents', 'session', 'data', 'meta', 'server', 'dc1', 'dc2', 'etcd', 'load'] as const;

/**
 * CPU µs per operation of each component in each measured phase, with RSS (MiB) at its end:
 * "agents" sums every agent process, "server" is the control plane when its roles share a process,
 * "dc1"/"dc2" are the two data centers of the federation workload (one server process each), "load" is
 * the bench's own process (simulated agents, HTTP clients, etcd clients).
 */
export function renderCpuTable(results: readonly WorkloadResult[]): string {
  const phases = results.flatMap((r) => r.cpu ?? []);
  if (phases.length === 0) return '';
  const used = COMPONENTS.filter((c) => phases.some((p) => p.usPerOp[c] !== undefined));
  const rows: string[][] = [
    ['phase', 'per', 'ops', ...used.map((c) => `${c} µs/op`), ...used.map((c) => `${c} MiB`)],
  ];
  for (const p of phases) {
    rows.push([
      p.phase,
      p.op,
      fmt(p.ops),
      ...used.map((c) => fmt(p.usPerOp[c])),
      ...used.map((c) => {
        const b = p.rssBytes[c];
        return b === undefined ? '—' : fmt(b / 1024 / 1024);
      }),
    ]);
  }
  return [
    'CPU per operation (µs, utime+stime from /proc) and RSS at the end of each phase (MiB):',
    table(rows),
  ].join('\n');
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  const line = (row: string[]): string => row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  return [line(rows[0] ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join(
    '\n',
  );
}

/** Writes the JSON result and returns its path. */
export async function writeJson(dir: string, doc: Record<string, unknown>): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify(doc, jsonNumbers, 2) + '\n');
  return file;
}

function jsonNumbers(_key: string, value: unknown): unknown {
  if (typeof value === 'number') return Number.isFinite(value) ? round(value, 3) : null;
  return value;
}

/** The JSON form of one metric, with its ratio. */
export function metricJson(m: Metric): Record<string, unknown> {
  return { ...m, ratioToEtcd: ratio(m) ?? null };
}

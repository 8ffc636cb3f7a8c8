/**
 * The control plane a workload runs against, as real processes: either its three roles as three
 * `meshreg server` processes (`MESHREG_ROLES=meta`, `data`, `session`), so each role's CPU and
 * memory can be read from its own pid, or all of them in one process. Either way the session's
 * agent port can be fixed, so agents find a restarted control plane where they left it.
 */
import { request } from 'undici';
import type { Components } from './cpu.js';
import { BENCH_ENV, freePort, processProblems } from './processes.js';
import { until } from './progress.js';
import { startMeshreg, type Started } from '../support/process.js';

export interface Cluster {
  /** The session's agent-link URL (what agents and simulated agents connect to). */
  readonly url: string;
  readonly sessionPort: number;
  /** The processes by role; one "server" when the roles share a process. */
  readonly procs: Readonly<Record<string, Started>>;
  /** Role → pid, for {@link snapshot}. */
  components(): Components;
  /** Current value of a Prometheus counter or gauge (summed over label sets) on the session. */
  sessionMetric(name: string): Promise<number>;
  /** Warn/error lines and unexpected exits of every process. */
  problems(): string[];
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface ClusterOptions {
  /** Roles in separate processes (default) or all in one. */
  readonly split?: boolean;
  /** The session's port (a free one when 0 or absent). */
  readonly sessionPort?: number;
  /** Settings for every process, over {@link BENCH_ENV}. */
  readonly env?: Record<string, string>;
}

/** Starts a control plane and waits until the session can take agents and every slot has a leader. */
export async function startCluster(o: ClusterOptions = {}): Promise<Cluster> {
  const sessionPort = o.sessionPort !== undefined && o.sessionPort !== 0 ? o.sessionPort : await freePort();
  const env = { ...BENCH_ENV, ...o.env };
  const procs: Record<string, Started> = {};
  const stopAll = async (signal?: NodeJS.Signals): Promise<void> => {
    // Session first, so agents do not see a session without data behind it any longer than needed.
    for (const role of ['session', 'data', 'meta', 'server']) await procs[role]?.stop(signal);
  };
  try {
    if (o.split === false) {
      procs['server'] = await startMeshreg(
        'server',
        { ...env, MESHREG_SESSION_PORT: String(sessionPort) },
        30_000,
      );
    } else {
      await startSplit(procs, env, sessionPort);
    }
  } catch (err) {
    await stopAll('SIGKILL');
    throw err;
  }
  const sessionProc = procs['session'] ?? procs['server'];
  const url = sessionProc?.addresses['session'] ?? '';
  const metricsUrl = url.replace(/^ws/, 'http').replace(/^(https?:\/\/[^/]+).*$/, '$1/metrics');
  return {
    url,
    sessionPort,
    procs,
    components: () =>
      Object.fromEntries(Object.entries(procs).map(([role, p]) => [role, [p.child.pid ?? 0]])),
    sessionMetric: async (name) => {
      const res = await request(metricsUrl);
      return sumMetric(await res.body.text(), name);
    },
    problems: () => Object.entries(procs).flatMap(([role, p]) => processProblems({ proc: p }, role)),
    stop: stopAll,
  };
}

async function startSplit(procs: Record<string, Started>, env: Record<string, string>, sessionPort: number) {
  const meta = await startMeshreg('server', { ...env, MESHREG_ROLES: 'meta' }, 30_000);
  procs['meta'] = meta;
  const metaUrl = meta.addresses['meta'] ?? '';
  const [data, session] = await Promise.all([
    startMeshreg(
      'server',
      { ...env, MESHREG_ROLES: 'data', MESHREG_DATA_ID: 'bench-data-1', MESHREG_META_URL: metaUrl },
      30_000,
    ),
    startMeshreg(
      'server',
      {
        ...env,
        MESHREG_ROLES: 'session',
        MESHREG_SESSION_ID: 'bench-session-1',
        MESHREG_SESSION_PORT: String(sessionPort),
        MESHREG_META_URL: metaUrl,
      },
      30_000,
    ),
  ]);
  procs['data'] = data;
  procs['session'] = session;
  const health = metaUrl.replace(/^ws/, 'http').replace(/^(https?:\/\/[^/]+).*$/, '$1/health');
  await until(
    'every slot to have a leader',
    async () => {
      const res = await request(health);
      const h = (await res.body.json()) as { slotTable?: { slots?: { leader?: string }[] } };
      const slots = h.slotTable?.slots ?? [];
      return slots.length > 0 && slots.every((s) => s.leader === 'bench-data-1');
    },
    30_000,
    50,
  );
}

/** Sums the samples of one metric in Prometheus text (every label set); 0 when absent. */
export function sumMetric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const v = Number(rest.slice(rest.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

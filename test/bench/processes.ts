/**
 * The processes under test: `meshreg server` / `meshreg dev` as real child processes, and their
 * resident memory read from /proc.
 */
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { startMeshreg, type Started } from '../support/process.js';

export const BENCH_TOKEN = 'bench-token';

/** Settings for every control plane the bench starts; workloads add their own on top. */
export const BENCH_ENV: Readonly<Record<string, string>> = {
  MESHREG_TOKEN: BENCH_TOKEN,
  // Per-connection info lines (1,000 agents connecting) would be part of what is measured.
  MESHREG_LOG_LEVEL: 'warn',
  MESHREG_SESSION_HOST: '127.0.0.1',
  MESHREG_DATA_WARMUP_MS: '3000',
  MESHREG_SESSION_CLIENT_GRACE_MS: '5000',
  MESHREG_RECONCILE_INTERVAL_MS: '5000',
  MESHREG_AGENT_BACKOFF_INITIAL_MS: '100',
  MESHREG_AGENT_BACKOFF_MAX_MS: '5000',
  // The roles talk over loopback links; leases roomy enough that a loaded machine expires nobody.
  MESHREG_META_LEASE_MS: '10000',
  MESHREG_HEARTBEAT_MS: '1000',
  MESHREG_META_WARMUP_MS: '300',
  MESHREG_DATA_SESSION_GRACE_MS: '10000',
};

export interface ControlPlane {
  readonly proc: Started;
  readonly url: string;
  readonly port: number;
  readonly pid: number;
}

/** Starts `meshreg server` on `port` (a free one when 0). */
export async function startServer(env: Record<string, string> = {}, port = 0): Promise<ControlPlane> {
  const p = port === 0 ? await freePort() : port;
  const proc = await startMeshreg(
    'server',
    { ...BENCH_ENV, MESHREG_SESSION_PORT: String(p), ...env },
    30_000,
  );
  const url = proc.addresses.session ?? '';
  return { proc, url, port: p, pid: proc.child.pid ?? 0 };
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => {
        resolve(port);
      });
    });
  });
}

/** Resident memory of a process in bytes (VmRSS), or undefined when it is gone. */
export async function rssBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m?.[1] === undefined ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** Problems a control-plane process reported: warn/error log lines, and an unexpected exit. */
export function processProblems(cp: { readonly proc: Started }, label = 'control plane'): string[] {
  const out: string[] = [];
  const lines = cp.proc.logs().split('\n');
  const counts = new Map<string, number>();
  for (const line of lines) {
    if (line === '') continue;
    let msg = line;
    try {
      const rec = JSON.parse(line) as { level?: string; msg?: string };
      if (rec.level !== 'warn' && rec.level !== 'error') continue;
      msg = `${rec.level}: ${rec.msg ?? ''}`;
    } catch {
      // Not a log line (e.g. a crash trace): report it as it is.
    }
    counts.set(msg, (counts.get(msg) ?? 0) + 1);
  }
  for (const [msg, n] of counts) out.push(`${label} logged "${msg.slice(0, 200)}" ×${n}`);
  const { child } = cp.proc;
  if (child.exitCode !== null && child.exitCode !== 0)
    out.push(`${label} exited with code ${child.exitCode}`);
  return out;
}

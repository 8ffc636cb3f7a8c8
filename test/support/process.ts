/**
 * Starts `meshreg` commands as real child processes and waits for their ready line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/meshreg.js');

export interface Started {
  readonly child: ChildProcess;
  readonly addresses: Readonly<Record<string, string>>;
  /** Everything the process wrote to stderr so far (its JSON logs). */
  logs(): string;
  /** Sends a signal and waits for exit; resolves with the exit code (or signal name). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
  readonly exited: Promise<number | string>;
}

/** Common settings that keep tests fast: short timers, quiet logs, loopback ports chosen by the OS. */
export const FAST_ENV: Readonly<Record<string, string>> = {
  MESHREG_LOG_LEVEL: 'info',
  MESHREG_DATA_WARMUP_MS: '200',
  MESHREG_SESSION_CLIENT_GRACE_MS: '500',
  MESHREG_AGENT_BACKOFF_INITIAL_MS: '50',
  MESHREG_AGENT_BACKOFF_MAX_MS: '500',
  MESHREG_RECONCILE_INTERVAL_MS: '1000',
  MESHREG_META_PORT: '0',
  MESHREG_DATA_PORT: '0',
  MESHREG_SESSION_PORT: '0',
  MESHREG_AGENT_PORT: '0',
  MESHREG_XDS_PORT: '0',
  MESHREG_META_WARMUP_MS: '100',
  MESHREG_HEARTBEAT_MS: '200',
  MESHREG_META_LEASE_MS: '1500',
  MESHREG_META_ARRANGE_INTERVAL_MS: '200',
  MESHREG_DATA_SESSION_GRACE_MS: '1000',
};

export async function startMeshreg(
  command: string,
  env: Record<string, string>,
  timeoutMs = 15_000,
): Promise<Started> {
  const child = spawn(process.execPath, [BIN, command], {
    env: { ...process.env, ...FAST_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve(code ?? signal ?? 'unknown');
    });
  });
  const addresses = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`meshreg ${command} not ready within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const m = /meshreg \w+ ready (\{.*\})/.exec(stdout);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(JSON.parse(m[1]) as Record<string, string>);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`meshreg ${command} exited (${String(code)}) before ready:\n${stderr}`));
    });
  });
  return {
    child,
    addresses,
    logs: () => stderr,
    exited,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** A fresh temporary folder, removed by the returned cleanup. */
export async function tempDir(
  prefix = 'meshreg-test-',
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Child environment that lets {@link measureAfterGc} force a full collection in the child. */
export const GC_ENV: Readonly<Record<string, string>> = {
  NODE_OPTIONS: `--expose-gc --import ${fileURLToPath(new URL('./gc-on-signal.js', import.meta.url))}`,
};

/** Heap used and RSS of a child started with {@link GC_ENV}, measured right after a full GC. */
export async function measureAfterGc(p: Started): Promise<{ heapBytes: number; rssBytes: number }> {
  const seen = (p.logs().match(/^gc-heap /gm) ?? []).length;
  p.child.kill('SIGUSR2');
  const deadline = Date.now() + 5000;
  for (;;) {
    const lines = [...p.logs().matchAll(/^gc-heap (\d+) (\d+)$/gm)];
    const last = lines[seen];
    if (last !== undefined) return { heapBytes: Number(last[1]), rssBytes: Number(last[2]) };
    if (Date.now() > deadline) throw new Error('no gc-heap line from the child within 5 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}

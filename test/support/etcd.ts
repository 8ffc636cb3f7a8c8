/**
 * A real etcd for tests: started on free loopback ports with a temporary data folder, removed after.
 * The binary comes from Debian's `etcd-server` (installed by .ci/run); a missing binary fails loudly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'undici';
import { freePort } from './ports.js';
import { tempDir } from './process.js';

export interface TestEtcd {
  readonly endpoint: string;
  /** Freezes etcd (SIGSTOP) to simulate it being unreachable; `resume` thaws it. */
  pause(): void;
  resume(): void;
  /** kill -9 of etcd; its data folder and ports stay for `restart`. */
  kill(): Promise<void>;
  /** Starts etcd again on the same data folder and ports, after `kill`. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startEtcd(): Promise<TestEtcd> {
  const { dir, cleanup } = await tempDir('meshreg-etcd-');
  const endpoint = `http://127.0.0.1:${await freePort()}`;
  const peer = `http://127.0.0.1:${await freePort()}`;
  let child = await spawnEtcd(dir, endpoint, peer);
  return {
    endpoint,
    pause: () => child.process.kill('SIGSTOP'),
    resume: () => child.process.kill('SIGCONT'),
    kill: async () => {
      child.process.kill('SIGCONT');
      child.process.kill('SIGKILL');
      await child.exited;
    },
    restart: async () => {
      child = await spawnEtcd(dir, endpoint, peer);
    },
    stop: async () => {
      child.process.kill('SIGCONT');
      child.process.kill('SIGKILL');
      await child.exited;
      await cleanup();
    },
  };
}

interface EtcdChild {
  readonly process: ChildProcess;
  readonly exited: Promise<void>;
}

/** Starts etcd on `dir` and the given URLs and waits until it reports healthy. */
async function spawnEtcd(dir: string, endpoint: string, peer: string): Promise<EtcdChild> {
  const child = spawn(
    'etcd',
    [
      '--name=test',
      `--data-dir=${dir}`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=test=${peer}`,
      '--log-level=error',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    const failed = await Promise.race([
      spawnError,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 50)),
    ]);
    if (failed !== undefined)
      throw new Error(`cannot start etcd (is the etcd-server package installed?): ${failed.message}`);
    if (child.exitCode !== null) throw new Error(`etcd exited: ${stderr}`);
    try {
      const res = await request(`${endpoint}/health`);
      if (res.statusCode === 200 && (await res.body.text()).includes('true')) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`etcd not healthy within 15 s: ${stderr}`);
    }
  }
  return { process: child, exited };
}

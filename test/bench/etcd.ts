/**
 * The baseline: a real etcd started by the bench on free loopback ports with a temporary data
 * folder, removed afterwards. Clients are the `etcd3` package; each `Etcd3` instance is one gRPC
 * channel (one HTTP/2 connection), so N clients stand for N connections.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Etcd3 } from 'etcd3';
import { request } from 'undici';
import { tempDir } from '../support/process.js';
import { freePort } from './processes.js';
import { sleep } from './progress.js';

export interface EtcdServer {
  readonly endpoint: string;
  readonly pid: number;
  readonly version: string;
  client(): Etcd3;
  stop(): Promise<void>;
}

/** Starts `etcd` and waits until its /health answers. */
export async function startEtcd(): Promise<EtcdServer> {
  const { dir, cleanup } = await tempDir('meshreg-bench-etcd-');
  const clientPort = await freePort();
  const peerPort = await freePort();
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child: ChildProcess = spawn(
    'etcd',
    [
      '--name=bench',
      `--data-dir=${dir}`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=bench=${peer}`,
      '--log-level=error',
      // Room for the scale workload's keys without the default 2 GiB quota alarm.
      '--quota-backend-bytes=8589934592',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`etcd exited before it was ready: ${stderr}`);
    try {
      const res = await request(`${endpoint}/health`);
      const body = await res.body.text();
      if (res.statusCode === 200 && body.includes('true')) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`etcd not healthy within 15 s: ${stderr}`);
    }
    await sleep(50);
  }
  const versionRes = await request(`${endpoint}/version`);
  const version = ((await versionRes.body.json()) as { etcdserver?: string }).etcdserver ?? 'unknown';
  const clients: Etcd3[] = [];
  return {
    endpoint,
    pid: child.pid ?? 0,
    version,
    client: () => {
      const c = new Etcd3({ hosts: endpoint });
      clients.push(c);
      return c;
    },
    stop: async () => {
      for (const c of clients) c.close();
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      await cleanup();
    },
  };
}

/**
 * Workload 5, agent reads: a real `meshreg dev` process (control plane + agent) holds a service of N
 * instances registered by another (simulated) agent, so the reads go through the pushed view. The
 * load is a closed loop over C keep-alive connections (undici, already a dependency: each connection
 * has one request in flight, as autocannon's default does) for a fixed time.
 * etcd: the same closed loop of range reads of the service's prefix over C client connections.
 */
import { Pool } from 'undici';
import { startMeshreg, tempDir } from '../../support/process.js';
import type { BenchOptions } from '../options.js';
import { progress, until } from '../progress.js';
import { budget, type WorkloadResult } from '../report.js';
import { BENCH_ENV, freePort } from '../processes.js';
import { SimAgent } from '../sim-agent.js';
import { summarize, type Summary } from '../stats.js';
import { instanceValue, side } from './common.js';
import { startEtcd } from '../etcd.js';

const SERVICE = 'web';

export interface LoadRun {
  readonly rps: number;
  readonly latency: Summary;
  readonly errors: number;
}

/** Runs `conns` closed loops of `once` for `durationMs`. */
export async function closedLoop(
  conns: number,
  durationMs: number,
  once: (i: number) => Promise<boolean>,
): Promise<LoadRun> {
  const samples: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + durationMs;
  await Promise.all(
    Array.from({ length: conns }, async (_, i) => {
      while (performance.now() < end) {
        const t = performance.now();
        let ok = false;
        try {
          ok = await once(i);
        } catch {
          ok = false;
        }
        samples.push(performance.now() - t);
        if (!ok) errors++;
      }
    }),
  );
  const elapsed = performance.now() - start;
  return { rps: (samples.length / elapsed) * 1000, latency: summarize(samples), errors };
}

export async function reads(o: BenchOptions): Promise<WorkloadResult> {
  const t0 = performance.now();
  const problems: string[] = [];
  const scope = 'reads';

  const meshreg = await side('meshreg', problems, o.workloadTimeoutMs, async (cleanups) => {
    const dir = await tempDir('meshreg-bench-dev-');
    cleanups.push(() => dir.cleanup());
    const dev = await startMeshreg('dev', {
      ...BENCH_ENV,
      MESHREG_DATA_WARMUP_MS: '200',
      MESHREG_AGENT_PORT: String(await freePort()),
      MESHREG_SESSION_PORT: String(await freePort()),
      MESHREG_AGENT_DATA_DIR: dir.dir,
    });
    cleanups.push(() => dev.stop());
    const publisher = new SimAgent('reads-pub', dev.addresses.session ?? '');
    cleanups.push(() => {
      publisher.stop();
    });
    for (let i = 0; i < o.readsInstances; i++) publisher.register(SERVICE, `web-${i}`, 30_000 + i);
    publisher.start();
    const base = dev.addresses.agent ?? '';
    const pool = new Pool(base, { connections: o.readsConnections, pipelining: 1 });
    cleanups.push(() => pool.close());
    const path = `/v1/health/service/${SERVICE}?passing`;
    await until(
      `the agent to serve all ${o.readsInstances} instances`,
      async () => {
        const res = await pool.request({ method: 'GET', path });
        const body = (await res.body.json()) as unknown[];
        return Array.isArray(body) && body.length === o.readsInstances;
      },
      30_000,
      50,
    );
    progress(scope, `meshreg: ${o.readsConnections} connections for ${o.readsDurationMs} ms`);
    const run = await closedLoop(o.readsConnections, o.readsDurationMs, async () => {
      const res = await pool.request({ method: 'GET', path });
      await res.body.dump();
      return res.statusCode === 200;
    });
    progress(scope, `meshreg: ${Math.round(run.rps)} req/s, p99 ${run.latency.p99.toFixed(2)} ms`);
    return run;
  });

  const etcd = !o.etcd
    ? undefined
    : await side('etcd', problems, o.workloadTimeoutMs, async (cleanups) => {
        const server = await startEtcd();
        cleanups.push(() => server.stop());
        const writer = server.client();
        const prefix = `/bench/reads/${SERVICE}/`;
        for (let i = 0; i < o.readsInstances; i++) {
          await writer.put(`${prefix}web-${i}`).value(instanceValue(SERVICE, `web-${i}`, 30_000 + i));
        }
        const clients = Array.from({ length: o.readsConnections }, () => server.client());
        // Warm every channel so connection set-up is not timed.
        await Promise.all(clients.map((c) => c.getAll().prefix(prefix).keys()));
        progress(scope, `etcd: ${o.readsConnections} connections for ${o.readsDurationMs} ms`);
        const run = await closedLoop(o.readsConnections, o.readsDurationMs, async (i) => {
          const c = clients[i];
          if (c === undefined) return false;
          const kvs = await c.getAll().prefix(prefix).strings();
          return Object.keys(kvs).length === o.readsInstances;
        });
        progress(scope, `etcd: ${Math.round(run.rps)} req/s, p99 ${run.latency.p99.toFixed(2)} ms`);
        return run;
      });

  for (const [label, run] of [
    ['meshreg', meshreg],
    ['etcd', etcd],
  ] as const) {
    if (run !== undefined && run.errors > 0) problems.push(`${label}: ${run.errors} failed or wrong reads`);
  }
  const dist: Record<string, Summary> = {};
  if (meshreg !== undefined) dist['meshreg read latency ms'] = meshreg.latency;
  if (etcd !== undefined) dist['etcd range read latency ms'] = etcd.latency;
  return {
    workload: scope,
    metrics: [
      {
        name: 'reads/s',
        unit: '1/s',
        better: 'higher',
        meshreg: meshreg?.rps,
        etcd: etcd?.rps,
        target: budget(meshreg?.rps, 'higher', 10_000, '≥ 10,000/s'),
      },
      {
        name: 'read p50',
        unit: 'ms',
        better: 'lower',
        meshreg: meshreg?.latency.p50,
        etcd: etcd?.latency.p50,
      },
      {
        name: 'read p99',
        unit: 'ms',
        better: 'lower',
        meshreg: meshreg?.latency.p99,
        etcd: etcd?.latency.p99,
        target: budget(meshreg?.latency.p99, 'lower', 5, '≤ 5 ms'),
      },
    ],
    distributions: dist,
    notes: [
      `GET /v1/health/service/${SERVICE}?passing on a real meshreg dev process, ${o.readsInstances} instances pushed from another agent, ${o.readsConnections} keep-alive connections in a closed loop for ${o.readsDurationMs} ms`,
      `etcd: range read of a ${o.readsInstances}-key prefix, same closed loop over ${o.readsConnections} client connections`,
      'the load generator shares the 2 cores with the process under test, which caps both figures',
    ],
    problems,
    durationMs: performance.now() - t0,
  };
}

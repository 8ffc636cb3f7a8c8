/**
 * Workload federation: two complete data centers on this machine (`meshreg server` with
 * MESHREG_DATACENTER dc1 and dc2, all roles in one process each), dc1 exporting one service to dc2,
 * a real agent in each. dc2's link to dc1 runs through a TCP proxy that counts the bytes both ways.
 *
 * Each change is a registration (a new instance) made through dc1's agent HTTP API; it is timed from
 * the register call's start until a blocking query on dc2's agent (`?dc=dc1&index=…`) has returned a
 * list holding it. Changes are made one after another. Traffic per change is the bytes the proxy saw
 * during the timed changes (both directions, WebSocket framing included, the periodic digest rounds
 * and pings of that time included), divided by the changes. CPU per change of each server and agent.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { measured, type PhaseCpu } from '../cpu.js';
import type { BenchOptions } from '../options.js';
import { BENCH_ENV, freePort } from '../processes.js';
import { progress, until } from '../progress.js';
import { RealAgent } from '../real-agent.js';
import type { Metric, WorkloadResult } from '../report.js';
import { summarize, type Summary } from '../stats.js';
import { FaultProxy } from '../../support/fault-proxy.js';
import { startMeshreg, tempDir } from '../../support/process.js';
import { side } from './common.js';

const SCOPE = 'federation';
const SERVICE = 'fed-bench';

interface FedRun {
  readonly latency: number[];
  readonly bytesPerChange: number;
  readonly idleBytesPerSec: number;
}

export async function federation(o: BenchOptions): Promise<WorkloadResult> {
  const t0 = performance.now();
  const problems: string[] = [];
  const cpu: PhaseCpu[] = [];
  const r = await side('meshreg', problems, o.workloadTimeoutMs * 2, async (cleanups): Promise<FedRun> => {
    const dir = await tempDir('meshreg-bench-fed-');
    cleanups.push(() => dir.cleanup());
    const tokenFile = path.join(dir.dir, 'federation-token');
    await writeFile(tokenFile, randomBytes(16).toString('hex'), { mode: 0o600 });
    const dc1Session = await freePort();
    const dc2Session = await freePort();
    const proxy = await FaultProxy.start(`127.0.0.1:${dc1Session}`);
    cleanups.push(() => proxy.close());
    const server = (name: string, session: number, peer: string, exports: string) =>
      startMeshreg(
        'server',
        {
          ...BENCH_ENV,
          MESHREG_DATACENTER: name,
          MESHREG_SESSION_PORT: String(session),
          MESHREG_META_PORT: '0',
          MESHREG_DATA_PORT: '0',
          MESHREG_FEDERATION_PEERS: peer,
          MESHREG_FEDERATION_TOKEN_FILE: tokenFile,
          MESHREG_FEDERATION_EXPORTS: exports,
          MESHREG_FEDERATION_DIGEST_MS: String(o.fedDigestMs),
        },
        30_000,
      );
    const dc1 = await server('dc1', dc1Session, `dc2=ws://127.0.0.1:${dc2Session}`, `dc2=${SERVICE}`);
    cleanups.push(() => dc1.stop());
    const dc2 = await server('dc2', dc2Session, `dc1=ws://${proxy.address}`, '');
    cleanups.push(() => dc2.stop());
    const a = await RealAgent.start('fed-a', `127.0.0.1:${dc1Session}`, 8, { MESHREG_DATACENTER: 'dc1' });
    cleanups.push(() => a.stop());
    const b = await RealAgent.start('fed-b', `127.0.0.1:${dc2Session}`, 8, { MESHREG_DATACENTER: 'dc2' });
    cleanups.push(() => b.stop());
    const remote = `${b.base}/v1/health/service/${SERVICE}?dc=dc1`;
    const read = async (index = 0): Promise<{ ids: Set<string>; index: number }> => {
      const res = await request(index > 0 ? `${remote}&index=${index}&wait=10s` : remote);
      const body = (await res.body.json()) as { Service: { ID: string } }[];
      return { ids: new Set(body.map((e) => e.Service.ID)), index: Number(res.headers['x-consul-index']) };
    };
    if (!(await a.register(SERVICE, 'fed-0', 20_000))) throw new Error('first registration refused');
    await until('dc1 export visible at dc2', async () => (await read()).ids.has('fed-0'), 30_000, 50);

    const idleFrom = proxy.bytes();
    const idleMs = Math.min(o.fedDigestMs * 2, 12_000);
    await new Promise((res) => setTimeout(res, idleMs));
    const idleTo = proxy.bytes();
    const idleBytesPerSec = ((idleTo.up + idleTo.down - idleFrom.up - idleFrom.down) * 1000) / idleMs;

    const components = { dc1: [dc1.child.pid ?? 0], dc2: [dc2.child.pid ?? 0], agents: [a.pid, b.pid] };
    const from = proxy.bytes();
    const { result: latency, cpu: phase } = await measured(
      components,
      `${SCOPE} ${o.fedChanges} changes`,
      'change',
      (l: number[]) => l.length,
      async () => {
        const out: number[] = [];
        let index = (await read()).index;
        for (let i = 1; i <= o.fedChanges; i++) {
          const id = `fed-${i}`;
          const started = performance.now();
          if (!(await a.register(SERVICE, id, 20_000 + i))) throw new Error(`registration ${id} refused`);
          for (;;) {
            const got = await read(index);
            index = got.index;
            if (got.ids.has(id)) break;
            if (performance.now() - started > 30_000) throw new Error(`${id} not visible in dc2 after 30 s`);
          }
          out.push(performance.now() - started);
          if (i % 50 === 0) progress(SCOPE, `${i}/${o.fedChanges} changes`);
        }
        return out;
      },
    );
    cpu.push(phase);
    const to = proxy.bytes();
    const bytes = to.up + to.down - from.up - from.down;
    return { latency, bytesPerChange: bytes / latency.length, idleBytesPerSec };
  });
  const dist: Record<string, Summary> = {};
  if (r !== undefined) dist['dc1 registration → visible in dc2 (ms)'] = summarize(r.latency);
  const s = r === undefined ? undefined : summarize(r.latency);
  const metrics: Metric[] = [
    { name: 'dc1 → dc2 visibility p50', unit: 'ms', better: 'lower', meshreg: s?.p50, etcd: undefined },
    { name: 'dc1 → dc2 visibility p99', unit: 'ms', better: 'lower', meshreg: s?.p99, etcd: undefined },
    {
      name: 'traffic between data centers per change',
      unit: 'B',
      better: 'lower',
      meshreg: r?.bytesPerChange,
      etcd: undefined,
    },
    {
      name: 'idle traffic between data centers',
      unit: 'B/s',
      better: 'lower',
      meshreg: r?.idleBytesPerSec,
      etcd: undefined,
    },
  ];
  return {
    workload: SCOPE,
    metrics,
    distributions: dist,
    notes: [
      `two data centers (one meshreg server process each), dc1 exports ${SERVICE} to dc2; a real agent in each`,
      `${o.fedChanges} registrations made one after another through dc1's agent, each timed until a blocking query on dc2's agent (?dc=dc1) returns it`,
      `traffic: bytes through a TCP proxy on dc2's link to dc1, both directions, during the timed changes (digest rounds every ${o.fedDigestMs} ms and pings included); the service grows to ${o.fedChanges + 1} instances, and each notice carries the whole datum`,
    ],
    problems,
    durationMs: performance.now() - t0,
    cpu,
  };
}

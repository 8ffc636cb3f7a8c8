/**
 * Workload 2, push latency, in two shapes over simulated agents:
 * - connections: N agents (one WebSocket each) subscribe to one service;
 * - sidecar: A agents with W watchers each (W apps on one host's agent), A × W receivers over A
 *   connections; an agent's watchers all have a change when the agent has applied it.
 * A publisher changes one instance F times; each change is timed in the load process, which both
 * publishes and receives: from just before the change is handed to the publisher's link until each
 * receiver has it. etcd: as many prefix watchers, over `--etcd-connections` connections for the
 * first shape and over A connections for the sidecar shape; a separate client puts the key.
 */
import { startCluster } from '../cluster.js';
import { measured, type PhaseCpu } from '../cpu.js';
import { startEtcd } from '../etcd.js';
import type { BenchOptions } from '../options.js';
import { progress, sleep, until } from '../progress.js';
import type { WorkloadResult } from '../report.js';
import { SimAgent, openAll, stopAll } from '../sim-agent.js';
import { side } from './common.js';
import {
  etcdPush,
  GAP_MS,
  pushDistributions,
  pushMetrics,
  timeFlips,
  type FlipTarget,
  type PushRun,
} from './push-timing.js';

const SERVICE = 'push-svc';

interface Shape {
  readonly name: string;
  readonly agents: number;
  readonly watchersPerAgent: number;
  readonly etcdConnections: number;
}

export async function push(o: BenchOptions): Promise<WorkloadResult> {
  const t0 = performance.now();
  const problems: string[] = [];
  const cpu: PhaseCpu[] = [];
  const shapes: Shape[] = [
    {
      name: `${o.pushSubscribers} connections`,
      agents: o.pushSubscribers,
      watchersPerAgent: 1,
      etcdConnections: o.etcdConnections,
    },
    {
      name: `sidecar ${o.pushSidecarAgents}×${o.pushSidecarWatchers}`,
      agents: o.pushSidecarAgents,
      watchersPerAgent: o.pushSidecarWatchers,
      etcdConnections: o.pushSidecarAgents,
    },
  ];
  const runs: { shape: Shape; meshreg: PushRun | undefined; etcd: PushRun | undefined }[] = [];
  for (const shape of shapes) {
    const meshreg = await side('meshreg', problems, o.workloadTimeoutMs, (cleanups) =>
      meshregShape(o, shape, problems, cpu, cleanups),
    );
    const etcd = !o.etcd
      ? undefined
      : await side('etcd', problems, o.workloadTimeoutMs, async (cleanups) => {
          const server = await startEtcd();
          cleanups.push(() => server.stop());
          const watchers = shape.agents * shape.watchersPerAgent;
          const r = await etcdPush(
            server,
            'push',
            shape.name,
            watchers,
            shape.etcdConnections,
            o.pushFlips,
            problems,
          );
          cpu.push(r.cpu);
          return r.run;
        });
    runs.push({ shape, meshreg, etcd });
  }
  const [conns, sidecar] = runs;
  return {
    workload: 'push',
    metrics: [
      ...pushMetrics(conns?.shape.name ?? '', conns?.meshreg, conns?.etcd, (e) =>
        e === undefined
          ? { limit: 50, text: '≤ 50 ms' }
          : { limit: Math.min(50, 0.7 * e), text: '≤ 50 ms and ≤ 0.7× etcd' },
      ),
      ...pushMetrics(sidecar?.shape.name ?? '', sidecar?.meshreg, sidecar?.etcd, (e) =>
        e === undefined ? { limit: NaN, text: '≤ 0.7× etcd' } : { limit: 0.7 * e, text: '≤ 0.7× etcd' },
      ),
    ],
    distributions: Object.fromEntries(
      runs.flatMap((r) => [
        ...Object.entries(pushDistributions(`${r.shape.name}: meshreg`, r.meshreg)),
        ...Object.entries(pushDistributions(`${r.shape.name}: etcd`, r.etcd)),
      ]),
    ),
    notes: [
      `${o.pushFlips} changes of one instance per shape, ${GAP_MS} ms apart; the control plane runs as separate meta, data and session processes`,
      `connections: ${o.pushSubscribers} subscribing agents (one WebSocket each); etcd: as many prefix watchers over ${o.etcdConnections} connections`,
      `sidecar: ${o.pushSidecarAgents} agents × ${o.pushSidecarWatchers} watchers; etcd: ${o.pushSidecarAgents * o.pushSidecarWatchers} watchers over ${o.pushSidecarAgents} connections`,
      'times are taken in the load process, which publishes and receives, so they include decoding every pushed frame there',
    ],
    problems,
    durationMs: performance.now() - t0,
    cpu,
  };
}

async function meshregShape(
  o: BenchOptions,
  shape: Shape,
  problems: string[],
  cpu: PhaseCpu[],
  cleanups: (() => unknown)[],
): Promise<PushRun> {
  const cluster = await startCluster({ env: { MESHREG_DATA_WARMUP_MS: '200' } });
  cleanups.push(() => {
    problems.push(...cluster.problems());
    return cluster.stop();
  });
  const publisher = new SimAgent('push-pub', cluster.url);
  const subs = Array.from({ length: shape.agents }, (_, i) => new SimAgent(`push-sub-${i}`, cluster.url));
  cleanups.push(() => {
    stopAll([publisher, ...subs]);
  });
  publisher.register(SERVICE, 'flip', 8080, { seq: '0' });
  for (const s of subs) s.watch(SERVICE);
  await openAll([publisher, ...subs], 120_000);
  progress('push', `meshreg ${shape.name}: ${subs.length} subscribers connected`);
  await until(
    'every subscriber to hold the instance',
    () => subs.every((s) => s.count(SERVICE) === 1),
    30_000,
  );
  await sleep(500);
  const target: FlipTarget = {
    receivers: shape.agents * shape.watchersPerAgent,
    arm: (flip, reached) => {
      const expected = String(flip);
      for (const s of subs) {
        let done = false;
        s.onChanged = () => {
          if (done) return;
          const inst = s.view.get(SERVICE)?.remote.values().next().value;
          if (inst?.meta.seq !== expected) return;
          done = true;
          reached(performance.now(), shape.watchersPerAgent);
        };
      }
    },
    fire: (flip) => {
      publisher.register(SERVICE, 'flip', 8080, { seq: String(flip) });
      return Promise.resolve();
    },
  };
  const { result, cpu: phase } = await measured(
    cluster.components(),
    `push ${shape.name}: meshreg`,
    'watcher × change',
    () => target.receivers * o.pushFlips,
    () => timeFlips('meshreg', 'push', o.pushFlips, target, problems),
  );
  cpu.push(phase);
  return result;
}

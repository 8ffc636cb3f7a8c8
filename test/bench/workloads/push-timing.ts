/**
 * Timing a change from its write to the last of many receivers, the same way for every kind of
 * receiver (simulated agents, blocking queries on real agents, etcd watchers): arm every receiver,
 * make the change, wait until each has reported it once, pause, repeat. Also etcd's side of a push
 * workload, shared by the simulated and the real-agent workloads.
 */
import type { Watcher } from 'etcd3';
import type { PhaseCpu } from '../cpu.js';
import { measured } from '../cpu.js';
import type { EtcdServer } from '../etcd.js';
import { progress, sleep, until } from '../progress.js';
import { budget, type Metric } from '../report.js';
import { summarize, type Summary } from '../stats.js';
import { instanceValue } from './common.js';

const FLIP_TIMEOUT_MS = 10_000;
/** Pause between changes so acknowledgements settle and each change is timed on a quiet system. */
export const GAP_MS = 100;

export interface PushRun {
  /** Per change: time until the last receiver had it. */
  readonly last: number[];
  /** Every receiver's time for every change. */
  readonly each: number[];
}

/** What a push measurement drives: its receivers and the change itself. */
export interface FlipTarget {
  readonly receivers: number;
  /** Arms the receivers for change `flip`: each calls `reached(at)` once it holds that change. */
  arm(flip: number, reached: (at: number, times?: number) => void): void;
  /** Makes change `flip`. */
  fire(flip: number): Promise<unknown>;
}

/** Times `flips` changes; a change that misses a receiver within 10 s becomes a problem line. */
export async function timeFlips(
  label: string,
  scope: string,
  flips: number,
  target: FlipTarget,
  problems: string[],
): Promise<PushRun> {
  const run: PushRun = { last: [], each: [] };
  for (let flip = 1; flip <= flips; flip++) {
    let got = 0;
    let lastAt = 0;
    let start = 0;
    target.arm(flip, (at, times = 1) => {
      for (let i = 0; i < times; i++) run.each.push(at - start);
      got += times;
      lastAt = Math.max(lastAt, at);
    });
    start = performance.now();
    await target.fire(flip);
    try {
      await until(
        `change ${flip} to reach every receiver`,
        () => got >= target.receivers,
        FLIP_TIMEOUT_MS,
        1,
      );
      run.last.push(lastAt - start);
    } catch {
      problems.push(
        `${label}: change ${flip} reached ${got} of ${target.receivers} receivers within ${FLIP_TIMEOUT_MS} ms`,
      );
    }
    if (flip % 10 === 0) progress(scope, `${label}: change ${flip}/${flips}`);
    await sleep(GAP_MS);
  }
  return run;
}

/**
 * etcd's push: `watchers` prefix watchers over `conns` client connections, one key changed `flips`
 * times by a separate client; etcd's and the load process's CPU measured over the changes.
 */
export async function etcdPush(
  server: EtcdServer,
  scope: string,
  shape: string,
  watchers: number,
  conns: number,
  flips: number,
  problems: string[],
): Promise<{ run: PushRun; cpu: PhaseCpu }> {
  const clients = Array.from({ length: Math.min(conns, watchers) }, () => server.client());
  const publisher = server.client();
  const prefix = `/bench/push/${shape}/`;
  const key = `${prefix}svc/flip`;
  await publisher.put(key).value(instanceValue('svc', 'flip', 8080, { seq: '0' }));
  const ws: Watcher[] = [];
  for (let i = 0; i < watchers; i++) {
    const c = clients[i % clients.length];
    if (c !== undefined) ws.push(await c.watch().prefix(prefix).create());
  }
  progress(scope, `etcd: ${ws.length} watchers over ${clients.length} connections`);
  await sleep(500);
  const value = (flip: number): string => instanceValue('svc', 'flip', 8080, { seq: String(flip) });
  const target: FlipTarget = {
    receivers: ws.length,
    arm: (flip, reached) => {
      const want = value(flip);
      for (const w of ws) {
        w.removeAllListeners('put');
        let done = false;
        w.on('put', (kv) => {
          if (done || kv.value.toString() !== want) return;
          done = true;
          reached(performance.now());
        });
      }
    },
    fire: async (flip) => {
      await publisher.put(key).value(value(flip));
    },
  };
  const { result, cpu } = await measured(
    { etcd: [server.pid] },
    `${scope} ${shape}: etcd`,
    'watcher × change',
    () => watchers * flips,
    () => timeFlips('etcd', scope, flips, target, problems),
  );
  await Promise.all(ws.map((w) => w.cancel()));
  return { run: result, cpu };
}

/** The distributions of a push run, under `label` ("meshreg", "etcd"). */
export function pushDistributions(label: string, run: PushRun | undefined): Record<string, Summary> {
  if (run === undefined) return {};
  return {
    [`${label} ms until the last receiver`]: summarize(run.last),
    [`${label} ms per receiver`]: summarize(run.each),
  };
}

/** The p50 and p99 rows of one push shape, the p99 judged against `target` (given etcd's p99). */
export function pushMetrics(
  shape: string,
  meshreg: PushRun | undefined,
  etcd: PushRun | undefined,
  target: (etcdP99: number | undefined) => { limit: number; text: string },
): Metric[] {
  const m = meshreg === undefined ? undefined : summarize(meshreg.last);
  const e = etcd === undefined ? undefined : summarize(etcd.last);
  const t = target(e?.p99);
  return [
    { name: `${shape}: last receiver p50`, unit: 'ms', better: 'lower', meshreg: m?.p50, etcd: e?.p50 },
    {
      name: `${shape}: last receiver p99`,
      unit: 'ms',
      better: 'lower',
      meshreg: m?.p99,
      etcd: e?.p99,
      target: budget(m?.p99, 'lower', t.limit, t.text),
    },
  ];
}

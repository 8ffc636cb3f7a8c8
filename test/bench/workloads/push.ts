/**
 * Workload 2, push latency: N agents subscribe to one service; a publisher changes one instance F
 * times. Each change is timed in the load process, which both publishes and receives: from just
 * before the change is handed to the publisher's link until each subscriber has applied it.
 * etcd: N prefix watchers spread over C client connections; a separate client puts the key.
 */
import type { BenchOptions } from '../options.js';
import { progress, sleep, until } from '../progress.js';
import { budget, type WorkloadResult } from '../report.js';
import { processProblems, startServer } from '../processes.js';
import { SimAgent, openAll, stopAll } from '../sim-agent.js';
import { summarize, type Summary } from '../stats.js';
import { instanceValue, side } from './common.js';
import { startEtcd } from '../etcd.js';
import type { Watcher } from 'etcd3';

const SERVICE = 'push-svc';
const FLIP_TIMEOUT_MS = 10_000;
/** Pause between changes so acknowledgements settle and each change is timed on a quiet system. */
const GAP_MS = 100;

interface PushRun {
  /** Per change: time until the last subscriber had it. */
  readonly last: number[];
  /** Every subscriber's time for every change. */
  readonly each: number[];
}

export async function push(o: BenchOptions): Promise<WorkloadResult> {
  const t0 = performance.now();
  const problems: string[] = [];
  const scope = 'push';

  const meshreg = await side('meshreg', problems, o.workloadTimeoutMs, async (cleanups) => {
    const cp = await startServer({ MESHREG_DATA_WARMUP_MS: '200' });
    cleanups.push(() => {
      problems.push(...processProblems(cp));
      return cp.proc.stop();
    });
    const publisher = new SimAgent('push-pub', cp.url);
    const subs = Array.from({ length: o.pushSubscribers }, (_, i) => new SimAgent(`push-sub-${i}`, cp.url));
    cleanups.push(() => {
      stopAll([publisher, ...subs]);
    });
    publisher.register(SERVICE, 'flip', 8080, { seq: '0' });
    for (const s of subs) s.watch(SERVICE);
    await openAll([publisher, ...subs], 120_000);
    progress(scope, `meshreg: ${subs.length} subscribers connected`);
    await until(
      'every subscriber to hold the instance',
      () => subs.every((s) => s.count(SERVICE) === 1),
      30_000,
    );
    await sleep(500);
    const run: PushRun = { last: [], each: [] };
    for (let flip = 1; flip <= o.pushFlips; flip++) {
      const expected = String(flip);
      let got = 0;
      let lastAt = 0;
      let start = 0;
      for (const s of subs) {
        let done = false;
        s.onChanged = () => {
          if (done) return;
          const inst = s.view.get(SERVICE)?.remote.values().next().value;
          if (inst?.meta.seq !== expected) return;
          done = true;
          lastAt = performance.now();
          run.each.push(lastAt - start);
          got++;
        };
      }
      start = performance.now();
      publisher.register(SERVICE, 'flip', 8080, { seq: expected });
      try {
        await until(
          `change ${flip} to reach every subscriber`,
          () => got === subs.length,
          FLIP_TIMEOUT_MS,
          1,
        );
        run.last.push(lastAt - start);
      } catch {
        problems.push(
          `meshreg: change ${flip} reached ${got} of ${subs.length} subscribers within ${FLIP_TIMEOUT_MS} ms`,
        );
      }
      if (flip % 10 === 0) progress(scope, `meshreg: change ${flip}/${o.pushFlips}`);
      await sleep(GAP_MS);
    }
    return run;
  });

  const etcd = !o.etcd
    ? undefined
    : await side('etcd', problems, o.workloadTimeoutMs, async (cleanups) => {
        const server = await startEtcd();
        cleanups.push(() => server.stop());
        const conns = Array.from({ length: Math.min(o.etcdConnections, o.pushSubscribers) }, () =>
          server.client(),
        );
        const publisher = server.client();
        const prefix = '/bench/push/';
        const key = `${prefix}${SERVICE}/flip`;
        await publisher.put(key).value(instanceValue(SERVICE, 'flip', 8080, { seq: '0' }));
        const watchers: Watcher[] = [];
        for (let i = 0; i < o.pushSubscribers; i++) {
          const c = conns[i % conns.length];
          if (c !== undefined) watchers.push(await c.watch().prefix(prefix).create());
        }
        progress(scope, `etcd: ${watchers.length} watchers over ${conns.length} connections`);
        await sleep(500);
        const run: PushRun = { last: [], each: [] };
        for (let flip = 1; flip <= o.pushFlips; flip++) {
          const value = instanceValue(SERVICE, 'flip', 8080, { seq: String(flip) });
          let got = 0;
          let lastAt = 0;
          let start = 0;
          for (const w of watchers) {
            w.removeAllListeners('put');
            let done = false;
            w.on('put', (kv) => {
              if (done || kv.value.toString() !== value) return;
              done = true;
              lastAt = performance.now();
              run.each.push(lastAt - start);
              got++;
            });
          }
          start = performance.now();
          await publisher.put(key).value(value);
          try {
            await until(
              `change ${flip} to reach every watcher`,
              () => got === watchers.length,
              FLIP_TIMEOUT_MS,
              1,
            );
            run.last.push(lastAt - start);
          } catch {
            problems.push(`etcd: change ${flip} reached ${got} of ${watchers.length} watchers in time`);
          }
          if (flip % 10 === 0) progress(scope, `etcd: change ${flip}/${o.pushFlips}`);
          await sleep(GAP_MS);
        }
        return run;
      });

  const ml = meshreg === undefined ? undefined : summarize(meshreg.last);
  const el = etcd === undefined ? undefined : summarize(etcd.last);
  const dist: Record<string, Summary> = {};
  if (meshreg !== undefined && ml !== undefined) {
    dist['meshreg ms until the last subscriber'] = ml;
    dist['meshreg ms per subscriber'] = summarize(meshreg.each);
  }
  if (etcd !== undefined && el !== undefined) {
    dist['etcd ms until the last watcher'] = el;
    dist['etcd ms per watcher'] = summarize(etcd.each);
  }
  const p99 = ml?.p99;
  return {
    workload: scope,
    metrics: [
      { name: 'last subscriber p50', unit: 'ms', better: 'lower', meshreg: ml?.p50, etcd: el?.p50 },
      {
        name: 'last subscriber p99',
        unit: 'ms',
        better: 'lower',
        meshreg: p99,
        etcd: el?.p99,
        target:
          el === undefined
            ? budget(p99, 'lower', 50, '≤ 50 ms')
            : budget(p99, 'lower', Math.min(50, 0.7 * el.p99), '≤ 50 ms and ≤ 0.7× etcd'),
      },
      { name: 'last subscriber max', unit: 'ms', better: 'lower', meshreg: ml?.max, etcd: el?.max },
      {
        name: 'per subscriber p50',
        unit: 'ms',
        better: 'lower',
        meshreg: dist['meshreg ms per subscriber']?.p50,
        etcd: dist['etcd ms per watcher']?.p50,
      },
    ],
    distributions: dist,
    notes: [
      `${o.pushSubscribers} subscribing agents (one WebSocket each) on one service; ${o.pushFlips} changes of one instance, ${GAP_MS} ms apart`,
      `etcd: ${o.pushSubscribers} prefix watchers over ${Math.min(o.etcdConnections, o.pushSubscribers)} connections`,
      'times are taken in the load process, which publishes and receives, so they include decoding every pushed frame there',
    ],
    problems,
    durationMs: performance.now() - t0,
  };
}

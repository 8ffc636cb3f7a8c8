/**
 * Workload 3, scale: N instances held by A agents (registered before connecting, so each agent's full
 * sync sends them in batches, as after an agent restart). Measures the control-plane process's
 * resident memory per instance, and the time a new agent waits from its subscribe to a
 * K-instance service until it holds the whole list.
 * etcd: a smaller N (its fsync per write makes 1,000,000 keys take too long for the run); memory per
 * key, and a prefix range read of a K-key service, the first half of an etcd subscription.
 */
import type { BenchOptions } from '../options.js';
import { progress, sleep, until } from '../progress.js';
import { budget, type WorkloadResult } from '../report.js';
import { processProblems, rssBytes, startServer } from '../processes.js';
import { SimAgent, stopAll } from '../sim-agent.js';
import { median, summarize, type Summary } from '../stats.js';
import { instanceValue, side, spread, yieldLoop } from './common.js';
import { startEtcd } from '../etcd.js';

interface ScaleRun {
  readonly instances: number;
  readonly rssBeforeBytes: number;
  readonly rssAfterBytes: number;
  readonly loadMs: number;
  readonly probesMs: number[];
}

const settleMs = 3000;

export async function scale(o: BenchOptions): Promise<WorkloadResult> {
  const t0 = performance.now();
  const problems: string[] = [];
  const scope = 'scale';
  const serviceCount = Math.max(1, Math.floor(o.scaleInstances / o.scaleServiceSize));

  const meshreg = await side('meshreg', problems, o.workloadTimeoutMs * 2, async (cleanups) => {
    const cp = await startServer({ MESHREG_DATA_WARMUP_MS: '200' });
    cleanups.push(() => {
      problems.push(...processProblems(cp));
      return cp.proc.stop();
    });
    await sleep(1000);
    const rssBefore = (await rssBytes(cp.pid)) ?? NaN;
    const perAgent = spread(o.scaleInstances, o.scaleAgents);
    const agents = perAgent.map((_, a) => new SimAgent(`scale-${a}`, cp.url));
    cleanups.push(() => {
      stopAll(agents);
    });
    let k = 0;
    for (const [a, agent] of agents.entries()) {
      for (let j = 0; j < (perAgent[a] ?? 0); j++, k++) {
        agent.register(`scale-svc-${k % serviceCount}`, `i-${j}`, 10_000 + (k % 50_000));
      }
    }
    progress(scope, `meshreg: ${k} instances prepared in ${agents.length} agents; connecting`);
    const confirmed = (): number => agents.reduce((n, ag) => n + ag.sync.counters.confirms, 0);
    const start = performance.now();
    // A few agents at a time: each full sync is tens of frames of 500 instances.
    for (let i = 0; i < agents.length; i += 5) {
      for (const ag of agents.slice(i, i + 5)) ag.start();
      await until(
        'the wave to be confirmed',
        () =>
          agents
            .slice(i, i + 5)
            .every((ag) => ag.sync.counters.confirms >= (perAgent[agents.indexOf(ag)] ?? 0)),
        o.workloadTimeoutMs,
        10,
      );
      if (i % 20 === 0) progress(scope, `meshreg: ${confirmed()} of ${o.scaleInstances} confirmed`);
      await yieldLoop();
    }
    const loadMs = performance.now() - start;
    await sleep(settleMs);
    const rssAfter = (await rssBytes(cp.pid)) ?? NaN;
    progress(
      scope,
      `meshreg: ${o.scaleInstances} instances in ${Math.round(loadMs)} ms; RSS ${mib(rssBefore)} → ${mib(rssAfter)} MiB`,
    );
    const probesMs: number[] = [];
    for (let p = 0; p < o.scaleProbes; p++) {
      const service = `scale-svc-${p % serviceCount}`;
      const probe = new SimAgent(`scale-probe-${p}`, cp.url);
      cleanups.push(() => {
        probe.stop();
      });
      probe.start();
      await until('the probe to connect', () => probe.open, 10_000);
      const want = Math.ceil(o.scaleInstances / serviceCount);
      let doneAt = 0;
      probe.onChanged = () => {
        if (doneAt === 0 && probe.count(service) >= want - 1) doneAt = performance.now();
      };
      const s = performance.now();
      probe.watch(service);
      await until(`a ${want}-instance push`, () => doneAt !== 0, 30_000, 1);
      probesMs.push(doneAt - s);
      probe.stop();
      await sleep(100);
    }
    progress(scope, `meshreg: new subscription answered in ${median(probesMs).toFixed(1)} ms (median)`);
    return {
      instances: o.scaleInstances,
      rssBeforeBytes: rssBefore,
      rssAfterBytes: rssAfter,
      loadMs,
      probesMs,
    };
  });

  const etcd = !o.etcd
    ? undefined
    : await side('etcd', problems, o.workloadTimeoutMs * 2, async (cleanups) => {
        const server = await startEtcd();
        cleanups.push(() => server.stop());
        await sleep(1000);
        const rssBefore = (await rssBytes(server.pid)) ?? NaN;
        const n = o.etcdScaleInstances;
        const services = Math.max(1, Math.floor(n / o.scaleServiceSize));
        const clients = Array.from({ length: o.etcdConnections }, () => server.client());
        const leases = clients.map((c) => c.lease(600));
        await Promise.all(leases.map((l) => l.grant()));
        const start = performance.now();
        const window = 2000;
        for (let i = 0; i < n; i += window) {
          const puts: Promise<unknown>[] = [];
          for (let k = i; k < Math.min(n, i + window); k++) {
            const lease = leases[k % leases.length];
            const svc = `scale-svc-${k % services}`;
            if (lease !== undefined)
              puts.push(
                lease
                  .put(`/bench/scale/${svc}/${k}`)
                  .value(instanceValue(svc, String(k), 10_000 + (k % 50_000)))
                  .exec(),
              );
          }
          await Promise.all(puts);
          if (i % 20_000 === 0) progress(scope, `etcd: ${i} of ${n} keys written`);
        }
        const loadMs = performance.now() - start;
        await sleep(settleMs);
        const rssAfter = (await rssBytes(server.pid)) ?? NaN;
        progress(
          scope,
          `etcd: ${n} keys in ${Math.round(loadMs)} ms; RSS ${mib(rssBefore)} → ${mib(rssAfter)} MiB`,
        );
        const probesMs: number[] = [];
        for (let p = 0; p < o.scaleProbes; p++) {
          const c = server.client();
          await c.get('/bench/warm');
          const s = performance.now();
          const keys = await c
            .getAll()
            .prefix(`/bench/scale/scale-svc-${p % services}/`)
            .strings();
          probesMs.push(performance.now() - s);
          if (Object.keys(keys).length < o.scaleServiceSize)
            problems.push(`etcd: range read returned ${Object.keys(keys).length} keys`);
          c.close();
        }
        return { instances: n, rssBeforeBytes: rssBefore, rssAfterBytes: rssAfter, loadMs, probesMs };
      });

  const perInst = (r: ScaleRun | undefined): number | undefined =>
    r === undefined ? undefined : r.rssAfterBytes / r.instances;
  const deltaPerInst = (r: ScaleRun | undefined): number | undefined =>
    r === undefined ? undefined : (r.rssAfterBytes - r.rssBeforeBytes) / r.instances;
  const rate = (r: ScaleRun | undefined): number | undefined =>
    r === undefined ? undefined : (r.instances / r.loadMs) * 1000;
  const dist: Record<string, Summary> = {};
  if (meshreg !== undefined) dist['meshreg ms from subscribe to the full list'] = summarize(meshreg.probesMs);
  if (etcd !== undefined) dist['etcd ms for a prefix range read of one service'] = summarize(etcd.probesMs);
  const mPer = perInst(meshreg);
  return {
    workload: scope,
    metrics: [
      {
        name: 'RSS per instance (total)',
        unit: 'bytes',
        better: 'lower',
        meshreg: mPer,
        etcd: perInst(etcd),
        target: budget(mPer, 'lower', 1024, '≤ 1 KiB'),
      },
      {
        name: 'RSS growth per instance',
        unit: 'bytes',
        better: 'lower',
        meshreg: deltaPerInst(meshreg),
        etcd: deltaPerInst(etcd),
      },
      { name: 'bulk load rate', unit: '1/s', better: 'higher', meshreg: rate(meshreg), etcd: rate(etcd) },
      {
        name: `new subscription, ${o.scaleServiceSize}-instance service, median`,
        unit: 'ms',
        better: 'lower',
        meshreg: meshreg === undefined ? undefined : median(meshreg.probesMs),
        etcd: etcd === undefined ? undefined : median(etcd.probesMs),
      },
    ],
    distributions: dist,
    notes: [
      `meshreg: ${o.scaleInstances} instances over ${serviceCount} services from ${o.scaleAgents} agents; RSS (VmRSS) of the meshreg server process ${settleMs} ms after the last confirmation`,
      `etcd: ${o.etcdScaleInstances} keys (not ${o.scaleInstances}: one fsync per write makes that too slow for one run) on ${o.etcdConnections} leases; memory per key is at that smaller count`,
      'a new meshreg subscription is timed from the subscribe frame until the agent has applied the full list; for etcd, a prefix range read of one service',
    ],
    problems,
    durationMs: performance.now() - t0,
  };
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(0);
}

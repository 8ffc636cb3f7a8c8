/**
 * `npm run bench`: runs the workloads against a real meshreg control plane and a real etcd in the
 * same run, prints a table on stdout (progress goes to stderr) and writes the JSON result.
 * Never part of `npm test`.
 */
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { parseOptions, USAGE, type WorkloadName } from './options.js';
import { progress } from './progress.js';
import { metricJson, renderTable, writeJson, type WorkloadResult } from './report.js';
import type { Workload } from './workloads/common.js';
import { agent1 } from './workloads/agent1.js';
import { agents50 } from './workloads/agents50.js';
import { churn } from './workloads/churn.js';
import { federation } from './workloads/federation.js';
import { push } from './workloads/push.js';
import { reads } from './workloads/reads.js';
import { recovery } from './workloads/recovery.js';
import { registration } from './workloads/registration.js';
import { scale } from './workloads/scale.js';
import { scaleAgents } from './workloads/scale-agents.js';

const WORKLOAD_FNS: Readonly<Record<WorkloadName, Workload | undefined>> = {
  registration,
  push,
  scale,
  churn,
  reads,
  recovery,
  agent1,
  agents50,
  'scale-agents': scaleAgents,
  federation,
};

const LOAD_MODEL =
  'Load comes from one load process on the same machine: many agents are simulated there with the ' +
  "agent's real upstream code (AgentSync + UpstreamLink, one WebSocket per agent), and agent1/agents50 " +
  'drive real `meshreg agent` processes through their HTTP API; the control plane under test is real ' +
  '`meshreg server` child processes (meta, data and session apart where CPU per role is shown); etcd is ' +
  'a real etcd started by the bench.';

async function main(): Promise<number> {
  let opts;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  progress('bench', LOAD_MODEL);
  progress('bench', `workloads: ${opts.only.join(', ')}${opts.quick ? ' (quick)' : ''}`);
  const started = new Date();
  const results: WorkloadResult[] = [];
  for (const name of opts.only) {
    const fn = WORKLOAD_FNS[name];
    if (fn === undefined) {
      progress(name, 'not implemented yet, skipped');
      continue;
    }
    progress(name, 'starting');
    const r = await fn(opts);
    results.push(r);
    progress(name, `done in ${(r.durationMs / 1000).toFixed(1)} s`);
  }
  process.stdout.write(`\n${LOAD_MODEL}\n\n${renderTable(results)}\n`);
  const file = await writeJson(opts.outDir, {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryBytes: os.totalmem(),
      node: process.version,
      etcd: etcdVersion(),
    },
    loadModel: LOAD_MODEL,
    options: opts,
    workloads: results.map((r) => ({ ...r, metrics: r.metrics.map(metricJson) })),
  });
  process.stdout.write(`\nJSON: ${file}\n`);
  return results.some((r) => r.problems.length > 0) ? 1 : 0;
}

function etcdVersion(): string {
  try {
    return execFileSync('etcd', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? 'unknown';
  } catch {
    return 'not installed';
  }
}

main().then(
  (code) => {
    process.exitCode = code;
    // Sockets of stopped clients may linger a moment; the results are written, so leave now.
    setTimeout(() => process.exit(code), 500).unref();
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

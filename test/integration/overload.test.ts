/**
 * Overload never shrinks a list. A `meshreg server` (meta, data and session in one process, with the
 * short leases and graces of the fast test settings) is starved: stopped (SIGSTOP) for 2 s in every
 * 4 s while a CPU-bound sibling process competes for the cores, and its agents keep registering
 * and watching. Every blocking query of every agent is recorded; no answer may miss an instance
 * registered before the run or one the same watcher saw before (nothing is deregistered). The
 * server must not expire a member of its own process, nor drop a live session's publishers.
 *
 * The multi-process variant runs meta, data and session as separate processes and starves the meta
 * only, then the data server only (half the run each), with default leases: a peer that was
 * stopped must not make the others expire or drop anything either.
 *
 * Durations: `OVERLOAD_RUN_MS` (16000; the multi-process variant runs half), `OVERLOAD_STOP_MS` (2000), `OVERLOAD_PERIOD_MS` (4000).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { httpBase, scrape, value } from '../support/admin.js';
import { header, http } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { startSmallCluster, type SmallCluster } from '../support/small-cluster.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'overload-secret-token';
const SERVICE = 'busy';
const BEFORE = 20;
const envMs = (name: string, def: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : def;
};
const RUN_MS = envMs('OVERLOAD_RUN_MS', 16_000);
const STOP_MS = envMs('OVERLOAD_STOP_MS', 2_000);
const PERIOD_MS = envMs('OVERLOAD_PERIOD_MS', 4_000);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function register(agent: Started, id: string): Promise<void> {
  const r = await http('PUT', `${agent.addresses['agent'] ?? ''}/v1/agent/service/register`, {
    Name: SERVICE,
    ID: id,
    Port: 8080,
  });
  assert.equal(r.status, 200, r.text);
}

/** One watcher's answers: the IDs of each blocking query's list. */
interface Watch {
  readonly answers: string[][];
  readonly stop: () => Promise<void>;
}

/** Polls blocking queries on `agent` until stopped, recording every answer. */
function watch(agent: Started): Watch {
  const answers: string[][] = [];
  let running = true;
  const loop = (async () => {
    let index = 0;
    // Bounded: one query per answer or per 2 s wait, for the length of the run.
    while (running) {
      const r = await http(
        'GET',
        `${agent.addresses['agent'] ?? ''}/v1/health/service/${SERVICE}?index=${index}&wait=2s`,
      );
      index = Number(header(r, 'x-consul-index')) || index;
      answers.push((r.body as { Service: { ID: string } }[]).map((e) => e.Service.ID));
    }
  })();
  return {
    answers,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/** A process that keeps one core busy until killed. */
function cpuHog(): () => void {
  const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  return () => {
    child.kill('SIGKILL');
  };
}

/** Registers `BEFORE` instances per agent and waits until every agent lists them all. */
async function baseline(agents: readonly Started[]): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, a] of agents.entries())
    for (let k = 0; k < BEFORE; k++) {
      await register(a, `a${i}-${k}`);
      ids.push(`a${i}-${k}`);
    }
  for (const a of agents)
    await waitFor(
      'every watcher sees every instance',
      async () => {
        const r = await http('GET', `${a.addresses['agent'] ?? ''}/v1/health/service/${SERVICE}`);
        return (r.body as unknown[]).length === ids.length;
      },
      10_000,
    );
  return ids;
}

/**
 * Stops and continues each of `targets` in turn (its share of `runMs`, `STOP_MS` in every
 * `PERIOD_MS`) beside a CPU hog while the agents keep registering and watching; then asserts that
 * no answer missed a baseline instance or one its watcher saw before. Returns the cycles run.
 */
async function starve(
  targets: readonly Started[],
  agents: readonly Started[],
  runMs: number,
): Promise<number> {
  const fixed = await baseline(agents);
  const watches = agents.map(watch);
  const stopHog = cpuHog();
  let loading = true;
  // Agents keep loading: one more instance each every 250 ms, whether the server runs or not.
  const load = (async () => {
    for (let n = 0; loading; n++) {
      await Promise.all(agents.map((a, i) => register(a, `a${i}-late-${n}`)));
      await sleep(250);
    }
  })();
  let cycles = 0;
  try {
    for (const target of targets) {
      const started = Date.now();
      while (Date.now() - started < runMs / targets.length) {
        target.child.kill('SIGSTOP');
        await sleep(STOP_MS);
        target.child.kill('SIGCONT');
        cycles++;
        await sleep(PERIOD_MS - STOP_MS);
      }
    }
  } finally {
    for (const target of targets) target.child.kill('SIGCONT');
    stopHog();
    loading = false;
  }
  await load;
  await sleep(2000);
  await Promise.all(watches.map((w) => w.stop()));
  let reads = 0;
  for (const [i, w] of watches.entries()) {
    const seen = new Set<string>();
    for (const [n, ids] of w.answers.entries()) {
      reads++;
      const list = new Set(ids);
      const missing = [...fixed, ...seen].filter((id) => !list.has(id));
      assert.deepEqual(
        missing,
        [],
        `watcher ${i}, answer ${n}: ${ids.length} instances, missing ${missing.join(', ')}`,
      );
      for (const id of ids) seen.add(id);
    }
  }
  assert.ok(reads > agents.length * 3, `${reads} answers recorded`);
  return cycles;
}

/** Nothing alive was expired or dropped by any of `servers`, and meta counted no expiry. */
async function assertNothingRemoved(servers: readonly Started[], meta: Started): Promise<void> {
  for (const s of servers) {
    const logs = s.logs();
    assert.doesNotMatch(logs, /member lease expired/);
    assert.doesNotMatch(logs, /dropping its publishers/);
    assert.doesNotMatch(logs, /publishers held \(protection mode\)/);
  }
  const metrics = await scrape(`${httpBase(meta.addresses['meta'] ?? '')}/metrics`);
  assert.equal(value(metrics, 'meshreg_meta_member_expirations_total', { role: 'meta' }) ?? 0, 0);
}

describe('overload', () => {
  let cluster: SmallCluster;

  before(async () => {
    cluster = await startSmallCluster(TOKEN, ['busy-a', 'busy-b', 'busy-c']);
  });

  after(async () => {
    cluster.server.child.kill('SIGCONT');
    await cluster?.stop();
  });

  test('overload - a server stopped 2 s in every 4 s beside a CPU hog never shrinks a list nor expires its own members', async () => {
    const cycles = await starve([cluster.server], cluster.agents, RUN_MS);
    assert.ok(cycles >= 2, `${cycles} stop/continue cycles`);
    await assertNothingRemoved([cluster.server], cluster.server);
  });
});

describe('overload, one role per process', () => {
  const procs: Started[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  let meta: Started;
  let data: Started;
  let agents: Started[];

  before(async () => {
    const env = {
      MESHREG_TOKEN: TOKEN,
      MESHREG_META_LEASE_MS: '5000',
      MESHREG_DATA_SESSION_GRACE_MS: '10000',
    };
    meta = await startMeshreg('server', { ...env, MESHREG_ROLES: 'meta' });
    procs.push(meta);
    const metaUrl = meta.addresses['meta'] ?? '';
    data = await startMeshreg('server', { ...env, MESHREG_ROLES: 'data', MESHREG_META_URL: metaUrl });
    procs.push(data);
    const session = await startMeshreg('server', {
      ...env,
      MESHREG_ROLES: 'session',
      MESHREG_META_URL: metaUrl,
    });
    procs.push(session);
    agents = await Promise.all(
      ['split-a', 'split-b'].map(async (name) => {
        const { dir, cleanup } = await tempDir();
        cleanups.push(cleanup);
        const agent = await startMeshreg('agent', {
          MESHREG_TOKEN: TOKEN,
          MESHREG_AGENT_UPSTREAM: session.addresses['session'] ?? '',
          MESHREG_NODE_NAME: name,
          MESHREG_AGENT_DATA_DIR: dir,
        });
        procs.push(agent);
        return agent;
      }),
    );
  });

  after(async () => {
    for (const p of procs) p.child.kill('SIGCONT');
    await Promise.all(procs.map((p) => p.stop()));
    await Promise.all(cleanups.map((c) => c()));
  });

  test('overload - stopping the meta only, then the data server only, expires and drops nothing', async () => {
    const cycles = await starve([meta, data], agents, RUN_MS / 2);
    assert.ok(cycles >= 2, `${cycles} stop/continue cycles`);
    await assertNothingRemoved(procs.slice(0, 3), meta);
  });
});

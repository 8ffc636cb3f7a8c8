/**
 * A real cluster on loopback: 1 meta, 3 data and 2 session processes, an agent on each session, and
 * two protocol-level subscribers on each session (one speaking protocol 1, one protocol 2 with deltas)
 * that record every push. Then: kill -9 a data server,
 * add a fourth, kill -9 a session. Nothing registered is lost, no subscriber's list ever shrinks or
 * empties because of the failures, and datum versions seen by subscribers only grow.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { http } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { RawSubscriber, type Observation } from '../support/raw-subscriber.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'cluster-token';
const SERVICES = Array.from({ length: 24 }, (_, i) => `svc-${i}`);
const MAX_LEADER_MOVES = 8;
const CLUSTER_ENV = {
  MESHREG_TOKEN: TOKEN,
  MESHREG_META_WARMUP_MS: '800',
  MESHREG_SLOT_COUNT: '64',
  MESHREG_SLOT_FOLLOWERS: '1',
  MESHREG_SLOT_MAX_LEADER_MOVES: String(MAX_LEADER_MOVES),
  MESHREG_DATA_WARMUP_MS: '300',
  MESHREG_DATA_SESSION_GRACE_MS: '1500',
  MESHREG_SESSION_CLIENT_GRACE_MS: '1500',
  // Generous next to the 200 ms heartbeat: a loaded test machine must not expire live members.
  MESHREG_META_LEASE_MS: '3000',
};

interface MetaHealth {
  epoch: number;
  members: { id: string; role: string }[];
  slotTable?: { slots: { leader: string; followers: string[] }[] };
}

const healthUrl = (ws: string): string => ws.replace('ws://', 'http://').replace(/\/v1\/.*$/, '/health');

describe('cluster', () => {
  const procs: Started[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  let meta: Started;
  const data = new Map<string, Started>();
  const sessions = new Map<string, Started>();
  const agents = new Map<string, Started>();
  const monitors: RawSubscriber[] = [];

  const startData = async (id: string): Promise<Started> => {
    const p = await startMeshreg('server', {
      ...CLUSTER_ENV,
      MESHREG_ROLES: 'data',
      MESHREG_DATA_ID: id,
      MESHREG_META_URL: meta.addresses['meta'] ?? '',
    });
    procs.push(p);
    data.set(id, p);
    return p;
  };

  const metaHealth = async (): Promise<MetaHealth> =>
    (await http('GET', healthUrl(meta.addresses['meta'] ?? ''))).body as MetaHealth;

  /** Every slot led by a live data server, and no data server still migrating. */
  const settled = async (liveData: readonly string[]): Promise<boolean> => {
    const h = await metaHealth();
    const slots = h.slotTable?.slots ?? [];
    if (slots.length === 0 || !slots.every((s) => liveData.includes(s.leader))) return false;
    for (const id of liveData) {
      const d = (await http('GET', healthUrl(data.get(id)?.addresses['data'] ?? ''))).body as {
        migrating: number;
        epoch: number;
      };
      if (d.migrating !== 0 || d.epoch !== h.epoch) return false;
    }
    return true;
  };

  const visibleEverywhere = async (want: number): Promise<boolean> => {
    for (const a of agents.values()) {
      for (const s of SERVICES) {
        const r = await http('GET', `${a.addresses['agent'] ?? ''}/v1/health/service/${s}`);
        if ((r.body as unknown[]).length !== want) return false;
      }
    }
    return true;
  };

  before(async () => {
    meta = await startMeshreg('server', { ...CLUSTER_ENV, MESHREG_ROLES: 'meta' });
    procs.push(meta);
    await Promise.all(['data-1', 'data-2', 'data-3'].map(startData));
    for (const id of ['s1', 's2']) {
      const p = await startMeshreg('server', {
        ...CLUSTER_ENV,
        MESHREG_ROLES: 'session',
        MESHREG_SESSION_ID: id,
        MESHREG_META_URL: meta.addresses['meta'] ?? '',
      });
      procs.push(p);
      sessions.set(id, p);
    }
    await waitFor('slot table over 3 data servers', () => settled(['data-1', 'data-2', 'data-3']), 15_000);
    for (const [name, session] of [
      ['a1', 's1'],
      ['a2', 's2'],
    ] as const) {
      const { dir, cleanup } = await tempDir();
      cleanups.push(cleanup);
      const p = await startMeshreg('agent', {
        ...CLUSTER_ENV,
        MESHREG_AGENT_UPSTREAM: sessions.get(session)?.addresses['session'] ?? '',
        MESHREG_NODE_NAME: name,
        MESHREG_AGENT_DATA_DIR: dir,
        MESHREG_AGENT_FULL_SYNC_INTERVAL_MS: '1000',
      });
      procs.push(p);
      agents.set(name, p);
    }
    for (const s of sessions.values())
      for (const version of [1, 2])
        monitors.push(new RawSubscriber(s.addresses['session'] ?? '', TOKEN, SERVICES, version));
    for (const [name, a] of agents) {
      for (const [i, s] of SERVICES.entries()) {
        const r = await http('PUT', `${a.addresses['agent'] ?? ''}/v1/agent/service/register`, {
          Name: s,
          ID: `${s}-${name}`,
          Port: 10_000 + i,
        });
        assert.equal(r.status, 200);
      }
    }
    await waitFor('every service with both instances at both agents', () => visibleEverywhere(2), 15_000);
    await waitFor(
      'monitors see both instances',
      () => monitors.every((m) => SERVICES.every((s) => m.count(s) === 2)),
      10_000,
    );
  });

  after(async () => {
    for (const m of monitors) m.close();
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await Promise.all(cleanups.map((c) => c()));
  });

  test('cluster - every publisher is held by its slot leader and one follower; replication lag is measured', async () => {
    const total = SERVICES.length * 2;
    await waitFor(
      'replicas complete',
      async () => {
        let held = 0;
        for (const d of data.values())
          held += ((await http('GET', healthUrl(d.addresses['data'] ?? ''))).body as { publishers: number })
            .publishers;
        return held === total * 2;
      },
      10_000,
    );
    let samples = 0;
    for (const d of data.values()) {
      const lag = (
        (await http('GET', healthUrl(d.addresses['data'] ?? ''))).body as {
          replicationLagMs: { samples: number; max: number };
        }
      ).replicationLagMs;
      samples += lag.samples;
      assert.ok(lag.max < 1000, `replication lag max ${lag.max} ms`);
    }
    assert.ok(samples > 0, 'followers measured the lag of streamed changes');
  });

  test('cluster - kill -9 of a data server: every slot gets a live leader, nothing is lost', async () => {
    const before = await metaHealth();
    const victim = before.slotTable?.slots[0]?.leader ?? 'data-1';
    await data.get(victim)?.stop('SIGKILL');
    data.delete(victim);
    const live = [...data.keys()];
    await waitFor('slots re-led by the survivors', () => settled(live), 15_000);
    const afterKill = await metaHealth();
    assert.ok(afterKill.epoch > before.epoch, 'epoch grew');
    assert.ok(
      afterKill.slotTable?.slots.every(
        (s) => live.includes(s.leader) && s.followers.every((f) => live.includes(f)),
      ),
    );
    await waitFor(
      'both instances of every service still visible at both agents',
      () => visibleEverywhere(2),
      10_000,
    );
  });

  test('cluster - a fourth data server takes slots in bounded steps, nothing is lost', async () => {
    const tableChanges = (): number[] =>
      meta
        .logs()
        .split('\n')
        .filter((l) => l.includes('"slot table changed"'))
        .map((l) => (JSON.parse(l) as { leaderMoves: number }).leaderMoves);
    const before = tableChanges().length;
    await startData('data-4');
    const live = [...data.keys()];
    await waitFor(
      'data-4 leads its share of slots',
      async () => {
        const h = await metaHealth();
        const led = h.slotTable?.slots.filter((s) => s.leader === 'data-4').length ?? 0;
        return led >= 64 / 4 - 1 && (await settled(live));
      },
      20_000,
    );
    // Failover promotions are not bounded (a dead leader's slots all move at once); balancing is.
    const moves = tableChanges().slice(before);
    assert.ok(moves.length >= 2, 'the table changed in several rounds');
    assert.ok(
      moves.every((m) => m <= MAX_LEADER_MOVES),
      `leader moves per round: ${moves.join(',')}`,
    );
    await waitFor('both instances still visible', () => visibleEverywhere(2), 10_000);
  });

  test('cluster - kill -9 of a session: its agent fails over and re-sends, the other side never loses it', async () => {
    const a1 = agents.get('a1')?.addresses['agent'] ?? '';
    const counters = async (): Promise<{ pushesApplied: number }> =>
      ((await http('GET', `${a1}/v1/meshreg/sync-status`)).body as { counters: { pushesApplied: number } })
        .counters;
    // Let balancing finish first: a slot that moves gets new versions, which are real pushes.
    let lastEpoch = -1;
    await waitFor(
      'a stable slot table',
      async () => {
        const e = (await metaHealth()).epoch;
        const stable = e === lastEpoch && (await settled([...data.keys()]));
        lastEpoch = e;
        return stable;
      },
      20_000,
      1000,
    );
    const pushesBefore = (await counters()).pushesApplied;
    const s1 = sessions.get('s1');
    await s1?.stop('SIGKILL');
    sessions.delete('s1');
    const survivor = monitors[1];
    assert.ok(survivor !== undefined);
    await waitFor(
      'a1 reconnected to s2',
      async () => {
        const st = (await http('GET', `${agents.get('a1')?.addresses['agent'] ?? ''}/v1/meshreg/health`))
          .body as { upstream: { connected: boolean; session: string } };
        return (
          st.upstream.connected &&
          (sessions.get('s2')?.addresses['session'] ?? '').includes(st.upstream.session)
        );
      },
      10_000,
    );
    // Past both grace periods, a1's instances are still there: they were re-sent, not dropped.
    await new Promise((r) => setTimeout(r, 2500));
    await waitFor('both instances visible at both agents', () => visibleEverywhere(2), 10_000);
    assert.ok(
      SERVICES.every((s) => survivor.count(s) === 2),
      'the subscriber on s2 still sees both instances',
    );
    // a1 re-subscribed with the versions it held: nothing changed, so nothing was pushed again.
    assert.equal((await counters()).pushesApplied, pushesBefore);
  });

  test('cluster - no subscriber ever saw a list shrink, and versions only grew', () => {
    for (const m of monitors) {
      const byService = new Map<string, Observation[]>();
      for (const o of m.observations) byService.set(o.service, [...(byService.get(o.service) ?? []), o]);
      for (const [service, obs] of byService) {
        for (let i = 1; i < obs.length; i++) {
          const prev = obs[i - 1];
          const cur = obs[i];
          assert.ok(prev !== undefined && cur !== undefined);
          assert.ok(
            cur.version > prev.version,
            `${service}: version went from ${prev.version} to ${cur.version}`,
          );
          assert.ok(
            cur.visible >= Math.min(prev.visible, 2),
            `${service}: list shrank from ${prev.visible} to ${cur.visible}`,
          );
        }
      }
      assert.ok(m.observations.length >= SERVICES.length, 'the monitor received pushes');
    }
  });

  test('cluster - protocol 1 and protocol 2 subscribers on one session both converge; only protocol 2 gets deltas', () => {
    // Monitors are made in pairs per session (protocol 1, then 2); the killed session's pair is closed.
    const live = monitors.map((m, i) => ({ m, version: i % 2 === 0 ? 1 : 2 })).filter(({ m }) => !m.closed);
    assert.deepEqual(
      live.map((l) => l.version),
      [1, 2],
      'both subscribers of the surviving session are up',
    );
    for (const { m } of live) for (const s of SERVICES) assert.equal(m.count(s), 2, `${s} seen whole`);
    for (const { m, version } of monitors.map((m, i) => ({ m, version: i % 2 === 0 ? 1 : 2 }))) {
      if (version === 1)
        assert.ok(
          m.observations.every((o) => o.kind === 'push'),
          'protocol 1: whole pushes',
        );
      else
        assert.ok(
          m.observations.some((o) => o.kind === 'delta'),
          'protocol 2: deltas were pushed',
        );
    }
  });
});

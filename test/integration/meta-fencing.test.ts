/**
 * Meta fencing on a real etcd with three metas, two then more data servers and a session. Through the
 * whole file a recorder polls /health of every meta every ~50 ms and watches the `slot-table` key in
 * etcd, noting the writer (URL and fencing token) of every revision. Faults: etcd frozen 10 s
 * (SIGSTOP/SIGCONT), etcd killed and restarted on the same data folder and port, and one meta cut off
 * from etcd (its etcd endpoint is a fault proxy) while the others are fine. After each, a new data
 * server makes the leader write a table. Checked: at most one meta reports leadership in any poll
 * round, the writers' tokens never go back (a deposed leader never writes after its successor), epochs
 * grow with revisions, after etcd's restart every meta's member list and table catch up with the live
 * data servers within the takeover bound (no view a dropped watch left behind), and with one meta cut
 * off no live member expires.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd3, type Watcher } from 'etcd3';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { http } from '../support/http.js';
import { startMeshreg, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'fencing-token';
const TTL_S = 2;
/** The README's takeover bound: TTL + 3 s. */
const TAKEOVER_BOUND_MS = TTL_S * 1000 + 3000;

interface MetaHealth {
  status: string;
  leader: boolean;
  epoch: number;
  members: { id: string; role: string; connected: boolean }[];
  slotTable?: { slots: { leader: string }[] };
}

interface Round {
  readonly at: number;
  readonly leaders: number[];
}

interface Write {
  readonly rev: bigint;
  readonly epoch: number;
  readonly url: string;
  readonly token: bigint;
  readonly leaders: ReadonlySet<string>;
}

const DATA_IDS = ['data-1', 'data-2', 'data-3', 'data-4'];

/** What a meta's view lacks of `ids`: in its member list, and among the leaders of its slot table. */
const viewGaps = (h: MetaHealth, ids: readonly string[]): string[] => {
  const gaps: string[] = [];
  const data = new Set(h.members.filter((x) => x.role === 'data').map((x) => x.id));
  const missing = ids.filter((id) => !data.has(id));
  if (missing.length > 0) gaps.push(`members lack ${missing.join(',')}`);
  const leaders = new Set(h.slotTable?.slots.map((s) => s.leader));
  if (ids.some((id) => !leaders.has(id))) gaps.push(`table leads ${[...leaders].join(',')}`);
  return gaps;
};

const healthUrl = (ws: string): string => ws.replace('ws://', 'http://').replace(/\/v1\/.*$/, '/health');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('meta fencing', () => {
  let etcd: TestEtcd;
  let proxy: FaultProxy;
  let watchClient: Etcd3;
  let tableWatch: Watcher | undefined;
  const metas: Started[] = [];
  const procs: Started[] = [];
  const rounds: Round[] = [];
  const writes: Write[] = [];
  let polling = true;
  let poller: Promise<void> = Promise.resolve();
  let metaUrls = '';

  const env = (endpoint: string): Record<string, string> => ({
    MESHREG_TOKEN: TOKEN,
    MESHREG_META_STORE: 'etcd',
    MESHREG_ETCD_ENDPOINTS: endpoint,
    MESHREG_ETCD_LEASE_TTL_S: String(TTL_S),
    MESHREG_META_WARMUP_MS: '300',
    MESHREG_META_LEASE_MS: '3000',
    MESHREG_SLOT_COUNT: '16',
    MESHREG_SLOT_MAX_LEADER_MOVES: '16',
  });
  const health = async (m: Started): Promise<MetaHealth | undefined> => {
    try {
      return (await http('GET', healthUrl(m.addresses['meta'] ?? ''))).body as MetaHealth;
    } catch {
      return undefined;
    }
  };
  const startMember = async (roles: string, extra: Record<string, string>): Promise<Started> => {
    const p = await startMeshreg('server', {
      ...env(etcd.endpoint),
      MESHREG_ROLES: roles,
      MESHREG_META_URL: metaUrls,
      ...extra,
    });
    procs.push(p);
    return p;
  };
  /** Whether a meta that reaches etcd directly holds a table in which `mustLead` leads a slot. */
  const tableUses = async (mustLead: string): Promise<boolean> => {
    for (const m of metas.slice(0, 2)) {
      const h = await health(m);
      if (h?.slotTable?.slots.some((s) => s.leader === mustLead) === true) return true;
    }
    return false;
  };
  /** Waits until every meta lists every data server of `ids` and its table gives each of them slots. */
  const everyViewHas = async (ids: readonly string[], timeoutMs: number): Promise<void> => {
    let last: string[] = [];
    await waitFor(
      () => `every meta to list and use ${ids.join(',')} (last: ${JSON.stringify(last)})`,
      async () => {
        const hs = await Promise.all(metas.map((m) => health(m)));
        last = hs.flatMap((h, i) =>
          (h === undefined ? ['silent'] : viewGaps(h, ids)).map((g) => `meta ${String(i)}: ${g}`),
        );
        return last.length === 0;
      },
      timeoutMs,
      100,
    );
  };
  const leaderRoundsAfter = (t: number): Round[] => rounds.filter((r) => r.at >= t);
  const assertSingleLeader = (from: number, what: string): void => {
    const seen = leaderRoundsAfter(from);
    assert.ok(seen.length > 20, `${what}: too few health rounds recorded (${String(seen.length)})`);
    const double = seen.find((r) => r.leaders.length > 1);
    assert.equal(
      double,
      undefined,
      `${what}: two metas reported leadership at once: ${JSON.stringify(double)}`,
    );
  };
  const assertFencedWrites = (): void => {
    for (let i = 1; i < writes.length; i++) {
      const [a, b] = [writes[i - 1], writes[i]];
      assert.ok(a !== undefined && b !== undefined);
      assert.ok(
        b.token >= a.token,
        `a deposed leader wrote after its successor: ${String(a.token)} then ${String(b.token)}`,
      );
      assert.ok(b.epoch > a.epoch, `epochs grow with revisions: ${String(a.epoch)} then ${String(b.epoch)}`);
    }
  };

  before(async () => {
    etcd = await startEtcd();
    proxy = await FaultProxy.start(etcd.endpoint);
    // meta 3 reaches etcd through the proxy; members list it first, so they join it first.
    for (const endpoint of [etcd.endpoint, etcd.endpoint, proxy.rewrite(etcd.endpoint)])
      metas.push(await startMeshreg('server', { ...env(endpoint), MESHREG_ROLES: 'meta' }));
    procs.push(...metas);
    metaUrls = [2, 0, 1].map((i) => metas[i]?.addresses['meta'] ?? '').join(',');
    watchClient = new Etcd3({ hosts: [etcd.endpoint] });
    const w = await watchClient.watch().key('/meshreg/slot-table').create();
    tableWatch = w;
    w.on('put', (kv) => {
      const t = JSON.parse(kv.value.toString()) as {
        epoch: number;
        slots: { leader: string }[];
        writer?: { url: string; token: string };
      };
      writes.push({
        rev: BigInt(kv.mod_revision),
        epoch: t.epoch,
        url: t.writer?.url ?? '?',
        token: BigInt(t.writer?.token ?? '0'),
        leaders: new Set(t.slots.map((sl) => sl.leader)),
      });
    });
    poller = (async () => {
      while (polling) {
        const hs = await Promise.all(metas.map((m) => health(m)));
        rounds.push({ at: Date.now(), leaders: hs.flatMap((h, i) => (h?.leader === true ? [i] : [])) });
        await sleep(50);
      }
    })();
    await startMember('data', { MESHREG_DATA_ID: 'data-1' });
    await startMember('data', { MESHREG_DATA_ID: 'data-2' });
    await startMember('session', {});
    await waitFor(
      'a table over data-1 and data-2',
      async () => (await tableUses('data-1')) && tableUses('data-2'),
      20_000,
    );
  });

  after(async () => {
    polling = false;
    await poller;
    await tableWatch?.cancel();
    watchClient.close();
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await proxy.close();
    await etcd.stop();
  });

  test('fencing - etcd frozen 10 s then resumed: one leader at a time, one writer per token order', async () => {
    const start = Date.now();
    const tokenBefore = writes.at(-1)?.token ?? 0n;
    etcd.pause();
    await sleep(10_000);
    etcd.resume();
    await startMember('data', { MESHREG_DATA_ID: 'data-3' });
    await waitFor('data-3 leads slots', () => tableUses('data-3'), 20_000);
    await sleep(2000);
    // Every lease ran out during the pause: the table was written under a new leadership.
    assert.ok((writes.at(-1)?.token ?? 0n) > tokenBefore, 'a new fencing token wrote after the pause');
    // Every member key ran out during the pause; none lost its slots for it.
    for (const w of writes.filter((x) => x.token > tokenBefore))
      assert.ok(
        w.leaders.has('data-1') && w.leaders.has('data-2'),
        `epoch ${String(w.epoch)} dropped a live data server`,
      );
    assertSingleLeader(start, 'pause');
    assertFencedWrites();
    const after = leaderRoundsAfter(Date.now() - 1000);
    assert.ok(
      after.every((r) => r.leaders.length === 1),
      'one leader once settled',
    );
  });

  test('fencing - etcd killed and restarted on its data: one leader at a time, writes fenced', async () => {
    const start = Date.now();
    const writesBefore = writes.length;
    await etcd.kill();
    await sleep(3000);
    await etcd.restart();
    await startMember('data', { MESHREG_DATA_ID: 'data-4' });
    await waitFor('data-4 leads slots', () => tableUses('data-4'), 25_000);
    // No meta keeps a view its watches left behind while etcd was away: every one catches up.
    await everyViewHas(DATA_IDS, TAKEOVER_BOUND_MS);
    await waitFor('the write is seen by the watch', () => writes.length > writesBefore, 15_000);
    await sleep(TAKEOVER_BOUND_MS / 2);
    assertSingleLeader(start, 'kill and restart');
    assertFencedWrites();
  });

  test('fencing - one meta cut off from etcd: its members re-join another meta and none expires', async () => {
    const ids = [...DATA_IDS, 'data-5'];
    const checks: string[] = [];
    const connectedAt = async (m: Started): Promise<string[]> =>
      ((await health(m))?.members ?? []).filter((x) => x.role === 'data' && x.connected).map((x) => x.id);
    // Preconditions: a data server is connected to the meta to be cut off (after the faults before,
    // the others may all sit on other metas: a new one joins the first listed), and every meta's view
    // holds every data server.
    await startMember('data', { MESHREG_DATA_ID: 'data-5' });
    await waitFor(
      'data-5 joined the meta to be cut off',
      async () => (await connectedAt(metas[2] as Started)).includes('data-5'),
      10_000,
    );
    await everyViewHas(ids, 20_000);
    proxy.blackhole('both');
    const until = Date.now() + 4 * TTL_S * 1000;
    try {
      while (Date.now() < until) {
        for (const m of metas.slice(0, 2)) {
          const h = await health(m);
          if (h !== undefined) checks.push(...viewGaps(h, ids));
        }
        await sleep(100);
      }
      const cut = await health(metas[2] as Started);
      assert.equal(cut?.status, 'degraded', 'the cut-off meta says so');
      assert.equal(cut.leader, false, 'a cut-off meta does not claim leadership');
      const moved = [
        ...(await connectedAt(metas[0] as Started)),
        ...(await connectedAt(metas[1] as Started)),
      ];
      assert.deepEqual(moved.sort(), ids, 'every data server re-joined a meta that reaches etcd');
    } finally {
      proxy.heal();
    }
    assert.deepEqual(checks, [], 'no live member expired while one meta was cut off');
    await waitFor(
      'the cut-off meta is healthy again',
      async () => (await health(metas[2] as Started))?.status === 'ok',
      15_000,
    );
    assertFencedWrites();
  });
});

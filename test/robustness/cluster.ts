/**
 * The live cluster of the robustness runner: a real etcd, metas on it, data servers, sessions and
 * agents, each a real process on ports chosen up front (so a killed process comes back on the same
 * address), and a {@link FaultProxy} in front of every link that can have one:
 *
 * - meta → etcd: one proxy per meta (a partial partition cuts a single meta off etcd);
 * - member → meta: one proxy in front of each meta, in every member's `MESHREG_META_URL`;
 * - session → data and data → data: one proxy per data server, listening on the data server's
 *   advertised address `127.0.0.<20+i>` at the data server's own port;
 * - agent → session: one proxy per session, the session's advertised URL and the agents' upstreams.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'undici';
import { FaultProxy } from '../support/fault-proxy.js';
import { freePort } from '../support/ports.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';

/** The kinds of process in the cluster. */
export type Role = 'etcd' | 'meta' | 'data' | 'session' | 'agent';

/** One process of the cluster that can be killed, restarted, stopped and continued. */
export interface Member {
  readonly name: string;
  readonly role: Role;
  /** `up`, `killed` (kill -9, not restarted yet) or `stopped` (SIGSTOP). */
  state: 'up' | 'killed' | 'stopped';
  /** How many times it was started (1 at first). */
  incarnation: number;
  /** Its base URL for HTTP (`/health`, the agent API). */
  readonly httpUrl: string;
  kill(): Promise<void>;
  restart(): Promise<void>;
  signal(sig: 'SIGSTOP' | 'SIGCONT'): void;
  logs(): string;
}

/** How many processes of each role to start. */
export interface ClusterOptions {
  readonly metas: number;
  readonly datas: number;
  readonly sessions: number;
  readonly agents: number;
  /** Extra environment for every meshreg process. */
  readonly env?: Readonly<Record<string, string>>;
}

/** The running cluster: its members, its proxies by name, and the timings the checker needs. */
export interface Cluster {
  readonly members: readonly Member[];
  readonly etcdEndpoint: string;
  /** Proxies by name: `etcd<-meta-1`, `meta-1`, `data-1`, `session-1`. */
  readonly proxies: ReadonlyMap<string, FaultProxy>;
  readonly etcdTtlS: number;
  readonly sessionGraceMs: number;
  byName(name: string): Member;
  stop(): Promise<void>;
}

/** The shared token of every process of the cluster. */
export const TOKEN = 'robustness-token';
const ETCD_TTL_S = 2;
const SESSION_GRACE_MS = 1000;

/** Starts the whole cluster and waits until every process printed its ready line. */
export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const cleanups: (() => Promise<void>)[] = [];
  const proxies = new Map<string, FaultProxy>();
  const members: Member[] = [];
  const etcd = await etcdMember(cleanups);
  members.push(etcd.member);
  const common = {
    MESHREG_TOKEN: TOKEN,
    MESHREG_ETCD_LEASE_TTL_S: String(ETCD_TTL_S),
    MESHREG_META_LEASE_MS: '3000',
    MESHREG_META_ARRANGE_INTERVAL_MS: '500',
    MESHREG_SLOT_COUNT: '64',
    MESHREG_SESSION_CLIENT_GRACE_MS: String(SESSION_GRACE_MS),
    MESHREG_DATA_SESSION_GRACE_MS: '3000',
    MESHREG_LOG_LEVEL: 'info',
    // Protection mode is tested on its own (protection.test.ts). With 2 data servers and 2 sessions its
    // default floor (1 removal per 60 s) would hold the second member a schedule kills for good, and
    // a held dead session stalls the slot rebuilds that wait for it (a known limit, in the README).
    MESHREG_PROTECTION_MIN_REMOVALS: '8',
    ...opts.env,
  };
  const metaUrls: string[] = [];
  for (let i = 1; i <= opts.metas; i++) {
    const name = `meta-${i}`;
    const port = await freePort();
    const toEtcd = await FaultProxy.start(etcd.endpoint);
    proxies.set(`etcd<-${name}`, toEtcd);
    const inbound = await FaultProxy.start(`127.0.0.1:${port}`);
    proxies.set(name, inbound);
    metaUrls.push(`ws://${inbound.address}/v1/meta-link`);
    const env = {
      ...common,
      MESHREG_ROLES: 'meta',
      MESHREG_META_STORE: 'etcd',
      MESHREG_META_PORT: String(port),
      MESHREG_ETCD_ENDPOINTS: `http://${toEtcd.address}`,
    };
    members.push(await meshregMember(name, 'meta', env, `http://127.0.0.1:${port}`));
  }
  const metaUrl = metaUrls.join(',');
  for (let i = 1; i <= opts.datas; i++) {
    const name = `data-${i}`;
    const port = await freePort();
    const host = `127.0.0.${20 + i}`;
    proxies.set(name, await FaultProxy.start(`127.0.0.1:${port}`, { host, port }));
    const env = {
      ...common,
      MESHREG_ROLES: 'data',
      MESHREG_DATA_ID: name,
      MESHREG_DATA_PORT: String(port),
      MESHREG_DATA_ADVERTISE_HOST: host,
      MESHREG_META_URL: metaUrl,
    };
    members.push(await meshregMember(name, 'data', env, `http://127.0.0.1:${port}`));
  }
  const upstreams: string[] = [];
  for (let i = 1; i <= opts.sessions; i++) {
    const name = `session-${i}`;
    const port = await freePort();
    const inbound = await FaultProxy.start(`127.0.0.1:${port}`);
    proxies.set(name, inbound);
    upstreams.push(`ws://${inbound.address}/v1/agent-link`);
    const env = {
      ...common,
      MESHREG_ROLES: 'session',
      MESHREG_SESSION_ID: name,
      MESHREG_SESSION_PORT: String(port),
      MESHREG_SESSION_ADVERTISE_URL: upstreams[i - 1] ?? '',
      MESHREG_META_URL: metaUrl,
    };
    members.push(await meshregMember(name, 'session', env, `http://127.0.0.1:${port}`));
  }
  for (let i = 1; i <= opts.agents; i++) {
    const name = `agent-${i}`;
    const port = await freePort();
    const { dir, cleanup } = await tempDir('meshreg-robust-agent-');
    cleanups.push(cleanup);
    // Agents start on different sessions and fail over to the others.
    const order = upstreams.map((_, k) => upstreams[(k + i) % upstreams.length] ?? '');
    const env = {
      MESHREG_TOKEN: TOKEN,
      MESHREG_NODE_NAME: name,
      MESHREG_AGENT_PORT: String(port),
      MESHREG_AGENT_DATA_DIR: dir,
      MESHREG_AGENT_UPSTREAM: order.join(','),
    };
    members.push(await meshregMember(name, 'agent', env, `http://127.0.0.1:${port}`));
  }
  return {
    members,
    etcdEndpoint: etcd.endpoint,
    proxies,
    etcdTtlS: ETCD_TTL_S,
    sessionGraceMs: SESSION_GRACE_MS,
    byName: (name) => {
      const m = members.find((x) => x.name === name);
      if (m === undefined) throw new Error(`no member ${name}`);
      return m;
    },
    stop: async () => {
      for (const m of members) if (m.state === 'stopped') m.signal('SIGCONT');
      await Promise.all(
        members.filter((m) => m.state === 'up' || m.state === 'stopped').map((m) => m.kill()),
      );
      await Promise.all([...proxies.values()].map((p) => p.close()));
      for (const c of cleanups) await c();
    },
  };
}

/** A meshreg process that can be killed and started again with the same environment. */
async function meshregMember(
  name: string,
  role: Role,
  env: Record<string, string>,
  httpUrl: string,
): Promise<Member> {
  let p: Started = await startMeshreg(role === 'agent' ? 'agent' : 'server', env, 30_000);
  let past = '';
  const m: Member = {
    name,
    role,
    state: 'up',
    incarnation: 1,
    httpUrl,
    kill: async () => {
      p.child.kill('SIGCONT');
      await p.stop('SIGKILL');
      past += p.logs();
      m.state = 'killed';
    },
    restart: async () => {
      // Counted before the start: an answer from the new process must never be labelled as the old one's.
      m.incarnation++;
      p = await startMeshreg(role === 'agent' ? 'agent' : 'server', env, 30_000);
      m.state = 'up';
    },
    signal: (sig) => {
      p.child.kill(sig);
      m.state = sig === 'SIGSTOP' ? 'stopped' : 'up';
    },
    logs: () => past + p.logs(),
  };
  return m;
}

/** A real etcd on fixed ports and a data folder that survive kill -9 and restart. */
async function etcdMember(cleanups: (() => Promise<void>)[]): Promise<{ member: Member; endpoint: string }> {
  const { dir, cleanup } = await tempDir('meshreg-robust-etcd-');
  cleanups.push(cleanup);
  const endpoint = `http://127.0.0.1:${await freePort()}`;
  const peer = `http://127.0.0.1:${await freePort()}`;
  const args = [
    '--name=robust',
    `--data-dir=${dir}`,
    `--listen-client-urls=${endpoint}`,
    `--advertise-client-urls=${endpoint}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=robust=${peer}`,
    '--log-level=error',
  ];
  let stderr = '';
  let child: ChildProcess;
  const start = async (): Promise<void> => {
    child = spawn('etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
    for (let i = 0; i < 300; i++) {
      if (child.exitCode !== null) throw new Error(`etcd exited: ${stderr}`);
      try {
        const res = await request(`${endpoint}/health`);
        if (res.statusCode === 200 && (await res.body.text()).includes('true')) return;
      } catch {
        // Not listening yet.
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`etcd not healthy within 15 s: ${stderr}`);
  };
  await start();
  const member: Member = {
    name: 'etcd',
    role: 'etcd',
    state: 'up',
    incarnation: 1,
    httpUrl: endpoint,
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
      member.state = 'killed';
    },
    restart: async () => {
      member.incarnation++;
      await start();
      member.state = 'up';
    },
    signal: (sig) => {
      child.kill(sig);
      member.state = sig === 'SIGSTOP' ? 'stopped' : 'up';
    },
    logs: () => stderr,
  };
  return { member, endpoint };
}

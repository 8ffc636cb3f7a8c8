/**
 * What runs against the cluster during a schedule and records into its {@link History}: a steady
 * registration/deregistration load on the agents' Consul API, a blocking-query watcher per agent and
 * service, a poller of each agent's pushed datum versions, a poller of each meta's `/health` and a
 * watch of the slot table in etcd whose writer is told by the bytes each meta's etcd link carried.
 */
import { Etcd3 } from 'etcd3';
import { request } from 'undici';
import type { Cluster, Member } from './cluster.js';
import type { History } from './history.js';
import type { Random } from './schedule.js';

/** The services the load registers and every agent watches. */
export const SERVICES = ['web', 'api', 'db'] as const;
const LOAD_INTERVAL_MS = 200;
const REQUEST_TIMEOUT_MS = 4000;
/** Bytes a meta's etcd link carried within this window can be the table write etcd reports. */
const ATTRIBUTION_WINDOW_MS = 3000;

interface Answer {
  status: number;
  index: number;
  body: unknown;
}

/** One HTTP request with a timeout; throws on a transport failure. */
export async function call(method: 'GET' | 'PUT', url: string, body?: unknown): Promise<Answer> {
  const res = await request(url, {
    method,
    headersTimeout: REQUEST_TIMEOUT_MS,
    bodyTimeout: REQUEST_TIMEOUT_MS,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.body.text();
  const index = Number(res.headers['x-consul-index'] ?? 0);
  return { status: res.statusCode, index, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

/** The instance ids in a `/v1/health/service/:name` answer. */
export function idsOf(body: unknown): string[] {
  if (!Array.isArray(body)) return [];
  return body.map((e) => (e as { Service?: { ID?: string } }).Service?.ID ?? '').sort();
}

/** Every agent's own registrations (its local truth): id → service. */
export async function localRegistrations(
  agents: readonly Member[],
): Promise<Map<string, { agent: string; service: string }>> {
  const out = new Map<string, { agent: string; service: string }>();
  for (const a of agents) {
    const res = await call('GET', `${a.httpUrl}/v1/agent/services`);
    for (const s of Object.values(res.body as Record<string, { ID: string; Service: string }>))
      out.set(s.ID, { agent: a.name, service: s.Service });
  }
  return out;
}

/** Runs the load and the recorders until `stop()`; each loop is bounded by the stop flag. */
export class Workload {
  readonly #cluster: Cluster;
  readonly #h: History;
  readonly #rng: Random;
  /** The load's idea of what is registered: id → agent and service. */
  readonly #registered: Map<string, { agent: string; service: string }>;
  readonly #loops: Promise<void>[] = [];
  #seq: number;
  #stopped = false;
  #loadOn = true;
  #inflight: Promise<void> | undefined;

  constructor(
    cluster: Cluster,
    h: History,
    rng: Random,
    registered: Map<string, { agent: string; service: string }>,
    seq: number,
  ) {
    this.#cluster = cluster;
    this.#h = h;
    this.#rng = rng;
    this.#registered = registered;
    this.#seq = seq;
  }

  get seq(): number {
    return this.#seq;
  }

  start(): void {
    const agents = this.#cluster.members.filter((m) => m.role === 'agent');
    this.#loops.push(this.#load(agents));
    for (const a of agents) {
      for (const s of SERVICES) this.#loops.push(this.#watch(a, s));
      this.#loops.push(this.#pushes(a));
    }
    this.#loops.push(this.#leaders());
    this.#loops.push(this.#tableWatch());
  }

  /** Stops new registrations and waits for the one in flight to be recorded (the recorders go on). */
  async stopLoad(): Promise<void> {
    this.#loadOn = false;
    await this.#inflight;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#loadOn = false;
    await Promise.all(this.#loops);
  }

  async #sleep(ms: number): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
  }

  async #load(agents: readonly Member[]): Promise<void> {
    while (!this.#stopped) {
      await this.#sleep(LOAD_INTERVAL_MS);
      if (!this.#loadOn) continue;
      const agent = this.#rng.pick(agents.filter((a) => a.state === 'up'));
      if (agent === undefined) continue;
      const mine = [...this.#registered].filter(([, r]) => r.agent === agent.name);
      const victim =
        mine.length > 4 || (mine.length > 0 && this.#rng.next() < 0.35) ? this.#rng.pick(mine) : undefined;
      if (victim === undefined) {
        const service = this.#rng.pick(SERVICES) ?? 'web';
        const id = `${service}-${++this.#seq}`;
        this.#inflight = this.#op('register', agent, service, id);
      } else this.#inflight = this.#op('deregister', agent, victim[1].service, victim[0]);
      await this.#inflight;
    }
  }

  async #op(kind: 'register' | 'deregister', agent: Member, service: string, id: string): Promise<void> {
    const start = Date.now();
    let ok: boolean | 'unknown';
    let index: number | undefined;
    try {
      const res =
        kind === 'register'
          ? await call('PUT', `${agent.httpUrl}/v1/agent/service/register`, {
              Name: service,
              ID: id,
              Port: 8000,
            })
          : await call('PUT', `${agent.httpUrl}/v1/agent/service/deregister/${id}`);
      ok = res.status === 200;
      if (res.index > 0) index = res.index;
    } catch (err) {
      // Refused: it never reached the agent. Anything else may have been applied.
      ok = (err as { code?: string }).code === 'ECONNREFUSED' ? false : 'unknown';
    }
    this.#h.ops.push({
      kind,
      start,
      end: Date.now(),
      service,
      id,
      agent: agent.name,
      ok,
      ...(index === undefined ? {} : { index }),
    });
    if (ok === false) return;
    if (kind === 'register') this.#registered.set(id, { agent: agent.name, service });
    else this.#registered.delete(id);
  }

  async #watch(agent: Member, service: string): Promise<void> {
    let index = 0;
    let incarnation = agent.incarnation;
    while (!this.#stopped) {
      if (agent.incarnation !== incarnation) {
        incarnation = agent.incarnation;
        index = 0;
      }
      try {
        const res = await call('GET', `${agent.httpUrl}/v1/health/service/${service}?index=${index}&wait=2s`);
        if (res.status !== 200 || agent.incarnation !== incarnation) throw new Error(`status ${res.status}`);
        index = res.index;
        this.#h.observations.push({
          time: Date.now(),
          subscriber: `${agent.name}#${incarnation}/${service}/blocking`,
          agent: agent.name,
          service,
          via: 'blocking',
          index,
          ids: idsOf(res.body),
        });
      } catch {
        await this.#sleep(200);
      }
    }
  }

  async #pushes(agent: Member): Promise<void> {
    while (!this.#stopped) {
      await this.#sleep(250);
      const incarnation = agent.incarnation;
      try {
        const res = await call('GET', `${agent.httpUrl}/v1/meshreg/sync-status`);
        if (agent.incarnation !== incarnation) continue;
        const watched = (res.body as { watched?: { Service: string; Version: number }[] }).watched ?? [];
        for (const w of watched)
          this.#h.observations.push({
            time: Date.now(),
            subscriber: `${agent.name}#${incarnation}/${w.Service}/push`,
            agent: agent.name,
            service: w.Service,
            via: 'push',
            index: w.Version,
          });
      } catch {
        // Down or stopped: the next round tries again.
      }
    }
  }

  async #leaders(): Promise<void> {
    const metas = this.#cluster.members.filter((m) => m.role === 'meta');
    while (!this.#stopped) {
      await this.#sleep(250);
      await Promise.all(
        metas.map(async (m) => {
          try {
            const res = await call('GET', `${m.httpUrl}/health`);
            const b = res.body as { leader?: boolean; epoch?: number };
            this.#h.leaderPolls.push({
              time: Date.now(),
              meta: m.name,
              leader: b.leader === true,
              epoch: b.epoch ?? 0,
            });
          } catch {
            // Down or stopped.
          }
        }),
      );
    }
  }

  async #tableWatch(): Promise<void> {
    const client = new Etcd3({ hosts: this.#cluster.etcdEndpoint });
    const bytes = new LinkBytes(this.#cluster);
    const sampler = setInterval(() => {
      bytes.sample();
    }, 100);
    try {
      const watcher = await client.watch().key('/meshreg/slot-table').create();
      watcher.on('put', (kv) => {
        const value = kv.value.toString();
        const stored = JSON.parse(value) as { epoch?: number; writer?: { url?: string } };
        const epoch = stored.epoch ?? -1;
        // A fenced table names its writer; older tables are told by the bytes on each etcd link.
        const writer = stored.writer?.url ?? bytes.attribute(value.length);
        this.#h.tableWrites.push({ time: Date.now(), epoch, revision: Number(kv.mod_revision), writer });
      });
      while (!this.#stopped) await this.#sleep(100);
      await watcher.cancel().catch(() => undefined);
    } catch {
      // etcd unreachable when the watch began: no table writes recorded for this schedule.
    } finally {
      clearInterval(sampler);
      client.close();
    }
  }
}

/** Bytes each meta sent to etcd recently, to tell which meta carried a table write. */
class LinkBytes {
  readonly #links: [string, { bytes(): { up: number } }][];
  readonly #last = new Map<string, number>();
  #samples: { time: number; meta: string; bytes: number }[] = [];

  constructor(cluster: Cluster) {
    this.#links = [...cluster.proxies]
      .filter(([n]) => n.startsWith('etcd<-'))
      .map(([n, p]) => [n.slice(6), p]);
  }

  sample(): void {
    const now = Date.now();
    for (const [meta, p] of this.#links) {
      const up = p.bytes().up;
      const delta = up - (this.#last.get(meta) ?? 0);
      this.#last.set(meta, up);
      // A closed connection leaves the sum: only growth counts.
      if (delta > 0) this.#samples.push({ time: now, meta, bytes: delta });
    }
    this.#samples = this.#samples.filter((s) => s.time > now - ATTRIBUTION_WINDOW_MS);
  }

  /** The meta that sent at least `size` bytes lately (the most, if several), then uses those bytes up. */
  attribute(size: number): string {
    this.sample();
    const sums = new Map<string, number>();
    for (const s of this.#samples) sums.set(s.meta, (sums.get(s.meta) ?? 0) + s.bytes);
    const [best] = [...sums].filter(([, n]) => n >= size).sort((a, b) => b[1] - a[1]);
    if (best === undefined) return 'unknown';
    let left = size;
    for (const s of this.#samples) {
      if (s.meta !== best[0] || left <= 0) continue;
      const used = Math.min(s.bytes, left);
      s.bytes -= used;
      left -= used;
    }
    return best[0];
  }
}

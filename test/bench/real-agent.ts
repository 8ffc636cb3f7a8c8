/**
 * Real agents: `meshreg agent` child processes (HTTP API on loopback, data folder in a temp dir)
 * driven as apps drive them, through the Consul HTTP API over undici keep-alive pools; and
 * blocking-query watchers (`?index=N&wait=…`), each holding its own connection as a Consul client does.
 */
import { Pool } from 'undici';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { BENCH_ENV } from './processes.js';

/** Room for a thousand blocking queries from one load process on one agent. */
const AGENT_ENV: Readonly<Record<string, string>> = {
  MESHREG_AGENT_MAX_CONNECTIONS: '8192',
  MESHREG_AGENT_MAX_BLOCKING_PER_IP: '8192',
};

export class RealAgent {
  readonly name: string;
  readonly proc: Started;
  readonly base: string;
  /** Connections for requests that answer at once (registrations, reads). */
  readonly pool: Pool;
  readonly #cleanup: () => Promise<void>;

  private constructor(name: string, proc: Started, connections: number, cleanup: () => Promise<void>) {
    this.name = name;
    this.proc = proc;
    this.base = proc.addresses['agent'] ?? '';
    this.pool = new Pool(this.base, { connections, pipelining: 1 });
    this.#cleanup = cleanup;
  }

  /** Starts an agent of node `name` pointed at the session `upstream` (`env`: more settings). */
  static async start(
    name: string,
    upstream: string,
    connections = 32,
    env: Record<string, string> = {},
  ): Promise<RealAgent> {
    const dir = await tempDir('meshreg-bench-agent-');
    try {
      const proc = await startMeshreg(
        'agent',
        {
          ...BENCH_ENV,
          ...AGENT_ENV,
          MESHREG_NODE_NAME: name,
          MESHREG_AGENT_UPSTREAM: upstream,
          MESHREG_AGENT_DATA_DIR: dir.dir,
          ...env,
        },
        30_000,
      );
      return new RealAgent(name, proc, connections, dir.cleanup);
    } catch (err) {
      await dir.cleanup();
      throw err;
    }
  }

  get pid(): number {
    return this.proc.child.pid ?? 0;
  }

  /** `PUT /v1/agent/service/register`; true on 200. */
  async register(
    service: string,
    id: string,
    port: number,
    meta: Record<string, string> = {},
  ): Promise<boolean> {
    const res = await this.pool.request({
      method: 'PUT',
      path: '/v1/agent/service/register',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        ID: id,
        Name: service,
        Address: '127.0.0.1',
        Port: port,
        Tags: ['bench'],
        Meta: meta,
      }),
    });
    await res.body.dump();
    return res.statusCode === 200;
  }

  /** `PUT /v1/agent/service/deregister/:id`; true on 200. */
  async deregister(id: string): Promise<boolean> {
    const res = await this.pool.request({ method: 'PUT', path: `/v1/agent/service/deregister/${id}` });
    await res.body.dump();
    return res.statusCode === 200;
  }

  /** `PUT /v1/agent/leave`: every registration of the host withdrawn at once, then the agent exits. */
  async leave(): Promise<boolean> {
    const res = await this.pool.request({ method: 'PUT', path: '/v1/agent/leave' });
    await res.body.dump();
    return res.statusCode === 200;
  }

  /** A plain read of a service's healthy instances: how many, and at which index. */
  async health(service: string): Promise<{ count: number; index: number }> {
    const res = await this.pool.request({ method: 'GET', path: `/v1/health/service/${service}?passing` });
    const body = (await res.body.json()) as unknown[];
    return { count: Array.isArray(body) ? body.length : -1, index: Number(res.headers['x-consul-index']) };
  }

  async stop(): Promise<void> {
    await this.pool.close();
    await this.proc.stop();
    await this.#cleanup();
  }
}

/** Starts `count` agents, a few at a time (a Node process start is CPU-bound on two cores). */
export async function startAgents(
  prefix: string,
  count: number,
  upstream: string,
  connections: number,
  onStarted: (a: RealAgent) => void,
  wave = 4,
): Promise<RealAgent[]> {
  const out: RealAgent[] = [];
  for (let i = 0; i < count; i += wave) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(wave, count - i) }, (_, j) =>
        RealAgent.start(`${prefix}-${i + j}`, upstream, connections),
      ),
    );
    for (const a of batch) onStarted(a);
    out.push(...batch);
  }
  return out;
}

/** What a blocking query returned: the index and, when counted, the number of entries. */
export interface WatchResult {
  readonly index: number;
  readonly count: number;
  readonly at: number;
}

/**
 * One blocking-query client of a service on one agent: reads once, then re-issues
 * `?index=<last>&wait=…` as soon as each answer arrives, like a Consul watch. `onResult` sees every
 * answer (timed when its body has been read).
 */
export class BlockingWatcher {
  readonly #pool: Pool;
  readonly #path: string;
  readonly #count: boolean;
  readonly #abort = new AbortController();
  #loop: Promise<void> | undefined;
  index = 0;
  count = -1;
  /** Requests currently held by the agent (between sending and answer). */
  waiting = false;
  onResult: (r: WatchResult) => void = () => undefined;

  /** `count` parses each body to count its entries (otherwise only the index is read). */
  constructor(pool: Pool, service: string, count: boolean) {
    this.#pool = pool;
    this.#path = `/v1/health/service/${service}?passing&wait=120s`;
    this.#count = count;
  }

  /** Makes the first read, then keeps blocking in the background until stopped. */
  async start(): Promise<void> {
    await this.#once();
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#abort.signal.aborted) {
      try {
        await this.#once();
      } catch {
        if (this.#abort.signal.aborted) return;
        // A refused or broken request: try again shortly rather than spin.
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  async #once(): Promise<void> {
    this.waiting = true;
    const res = await this.#pool.request({
      method: 'GET',
      path: this.index === 0 ? this.#path : `${this.#path}&index=${this.index}`,
      signal: this.#abort.signal,
    });
    let count = this.count;
    if (this.#count) {
      const body = (await res.body.json()) as unknown[];
      count = Array.isArray(body) ? body.length : -1;
    } else {
      await res.body.dump();
    }
    this.waiting = false;
    const at = performance.now();
    this.index = Number(res.headers['x-consul-index']);
    this.count = count;
    this.onResult({ index: this.index, count, at });
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
  }
}

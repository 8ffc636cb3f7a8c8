/**
 * A simulated agent: the agent's real upstream code (AgentSync over UpstreamLink, with its own
 * LocalServices and ServiceView) without the HTTP API or the disk. Many of them share the load
 * process, each with its own WebSocket, so the control plane sees N independent agents.
 */
import { randomUUID } from 'node:crypto';
import { LocalServices, type ServiceDefinition } from '../../agent/local/local-services.js';
import { AgentSync } from '../../agent/upstream/sync.js';
import { ServiceView } from '../../agent/view/service-view.js';
import { silentLogger } from '../../proto/runtime/log.js';
import { VersionClock } from '../../proto/version.js';
import { BENCH_TOKEN } from './processes.js';
import { sleep } from './progress.js';

export class SimAgent {
  readonly name: string;
  readonly local = new LocalServices(new VersionClock());
  readonly view: ServiceView;
  readonly sync: AgentSync;
  /** Called synchronously whenever a pushed change of a watched service is applied. */
  onChanged: (service: string) => void = () => undefined;

  constructor(name: string, url: string) {
    this.name = name;
    const node = { nodeId: randomUUID(), node: name, address: '127.0.0.1', zone: '', region: '' };
    this.view = new ServiceView(node.nodeId, {
      onWatch: (service) => {
        this.sync.subscribe(service);
      },
      onWatchCatalog: () => undefined,
      localInstances: () => [],
      onChanged: (service) => {
        this.onChanged(service);
      },
    });
    this.sync = new AgentSync(this.local, this.view, node, {
      link: {
        urls: [url],
        token: BENCH_TOKEN,
        connectTimeoutMs: 10_000,
        maxFrameBytes: 64 * 1024 * 1024,
        // The agent's defaults (MESHREG_AGENT_BACKOFF_*).
        backoff: { initialMs: 100, maxMs: 5000, multiplier: 2, jitter: 0.5 },
      },
      fullSyncIntervalMs: 60_000,
      logger: silentLogger,
    });
  }

  get open(): boolean {
    return this.sync.state === 'open';
  }

  start(): void {
    this.sync.start();
  }

  stop(): void {
    this.sync.stop();
  }

  /** Registers an instance as an app would through the HTTP API (one publish frame when open). */
  register(service: string, id: string, port: number, meta: Record<string, string> = {}): void {
    this.local.register(definition(service, id, port, meta));
  }

  /** Starts watching a service, as the first read of it on a real agent does. */
  watch(service: string): void {
    this.view.ensure(service);
  }

  /** How many pushed instances of `service` this agent holds. */
  count(service: string): number {
    return this.view.get(service)?.remote.size ?? 0;
  }
}

export function definition(
  service: string,
  id: string,
  port: number,
  meta: Record<string, string> = {},
): ServiceDefinition {
  return {
    id,
    name: service,
    tags: ['bench'],
    address: '127.0.0.1',
    port,
    meta,
    weights: { passing: 1, warning: 1 },
    enableTagOverride: false,
  };
}

/**
 * Starts `agents` in waves (a thousand simultaneous handshakes measure the accept queue, not the
 * registry) and waits until every one is open.
 */
export async function openAll(agents: readonly SimAgent[], timeoutMs: number, wave = 100): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; i < agents.length; i += wave) {
    const batch = agents.slice(i, i + wave);
    for (const a of batch) a.start();
    while (!batch.every((a) => a.open)) {
      if (performance.now() > deadline) {
        const open = agents.filter((a) => a.open).length;
        throw new Error(`only ${open} of ${agents.length} agents connected within ${timeoutMs} ms`);
      }
      await sleep(5);
    }
  }
}

export function stopAll(agents: readonly SimAgent[]): void {
  for (const a of agents) a.stop();
}

/** Counts, from now on, link opens (reconnects) and entries into backoff (failed attempts or drops). */
export function countLinks(agents: readonly SimAgent[]): {
  readonly opens: () => number;
  readonly backoffs: () => number;
  readonly stop: () => void;
} {
  let opens = 0;
  let backoffs = 0;
  const offs = agents.map((a) =>
    a.sync.onStateChange((s) => {
      if (s === 'open') opens++;
      else if (s === 'backoff') backoffs++;
    }),
  );
  return {
    opens: () => opens,
    backoffs: () => backoffs,
    stop: () => {
      for (const off of offs) off();
    },
  };
}

/**
 * The sidecar agent: composes local registrations (persisted), the view of watched services, the
 * upstream link with its anti-entropy, and the HTTP API. One per host, bound to loopback by default.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type http from 'node:http';
import type { Instance } from '../proto/instance.js';
import type { Logger } from '../proto/runtime/log.js';
import { ShutdownPhases } from '../proto/runtime/shutdown.js';
import { registerAgentMetrics } from './agent-metrics.js';
import { AgentRegistrations } from './agent-registrations.js';
import { stopAgent } from './agent-shutdown.js';
import { addProbeRoutes } from './agent-probes.js';
import { healthView, syncStatusView } from './agent-status.js';
import { VersionClock } from '../proto/version.js';
import type { AgentConfig } from './config.js';
import { addConsulRoutes, type ConsulBackend, type UpstreamStatus } from './consul/consul-api.js';
import { DatacenterReads } from './consul/consul-datacenters.js';
import { FederationView } from './federation-view.js';
import type { RegisterRequest } from './consul/consul-register.js';
import { JsonRouter } from '../proto/runtime/json-router.js';
import { HttpServer } from './http/http-server.js';
import { LocalServices, toInstance, type NodeIdentity } from './local/local-services.js';
import { LocalStore } from './local/local-store.js';
import { DefinitionFiles } from './local/definition-files.js';
import { AgentChecks } from './checks/agent-checks.js';
import type { CheckRules } from './checks/check-definition.js';
import { addCheckRoutes } from './consul/consul-checks.js';
import { AgentSync } from './upstream/sync.js';
import { ViewCache } from './view/view-cache.js';
import { ViewEndpoints } from './view/view-endpoints.js';
import { startXdsServer, type XdsServerHandle } from './eds/grpc-server.js';
import { existingXdsView } from './eds/xds-view.js';
import { EDS_REST_PATH, handleDiscoveryRest } from './eds/rest-gateway.js';
import { ServiceView } from './view/service-view.js';
import { assertMayLeave } from './auth/local-token.js';
import { checkNetPolicy } from './auth/security-config.js';

const VIEW_CACHE_FILE = 'view-cache.jsonl';
const NODE_ID_FILE = 'node-id';

/** What the entry point lends the agent. */
export interface AgentHooks {
  /** Prometheus text of the process's metrics, served at `GET /v1/meshreg/metrics`. */
  readonly scrape?: () => Promise<string>;
  /** Extra HTTP endpoints on the agent's port, tried before its API (`meshreg dev`: the console). */
  readonly http?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean;
}

export class Agent implements ConsulBackend {
  readonly node: NodeIdentity;
  readonly datacenter: string;
  readonly view: ServiceView;
  readonly local: LocalServices;
  readonly firstReadWaitMs: number;
  /** The federated data centers the session reports (restored from disk until it does). */
  readonly federation: FederationView;
  readonly datacenters: DatacenterReads;
  readonly #sync: AgentSync;
  readonly #http: HttpServer;
  readonly #store: LocalStore;
  readonly #cache: ViewCache;
  readonly #files: DefinitionFiles | undefined;
  readonly #endpoints: ViewEndpoints;
  #xds: XdsServerHandle | undefined;
  readonly #config: AgentConfig;
  readonly #log: Logger;
  readonly checks: AgentChecks;
  readonly #registrations: AgentRegistrations;
  #left: ((why: string) => void) | undefined;
  /** Resolves once a graceful leave (`PUT /v1/agent/leave`) is done: the process should stop. */
  readonly left = new Promise<string>((resolve) => {
    this.#left = resolve;
  });
  readonly #evictTimer: NodeJS.Timeout;
  readonly #unregisterMetrics: () => void;
  /** The link's status while it is open (constant until the state changes); every read asks. */
  #openStatus: UpstreamStatus | undefined;
  /** Set once {@link Agent.start} restored the state and bound the API: the readiness probe's answer. */
  #started = false;

  private constructor(config: AgentConfig, node: NodeIdentity, logger: Logger, hooks: AgentHooks) {
    this.node = node;
    this.datacenter = config.datacenter;
    this.firstReadWaitMs = config.firstReadWaitMs;
    this.#log = logger;
    this.local = new LocalServices(new VersionClock());
    this.checks = new AgentChecks(this.local, {
      minIntervalMs: config.checkMinIntervalMs,
      minDeregisterMs: config.checkMinDeregisterMs,
      reapIntervalMs: config.checkReapIntervalMs,
      net: checkNetPolicy(config.security.checkNet),
      logger,
      deregister: (id) => this.deregister(id),
    });
    this.view = new ServiceView(
      node.nodeId,
      {
        onWatch: (service) => {
          this.#sync.subscribe(service);
        },
        onWatchCatalog: () => {
          this.#sync.subscribeCatalog();
        },
        localInstances: (service) => this.#localInstances(service),
        onChanged: (service) => {
          this.#cache.changed(service);
          this.#endpoints.changed(service);
        },
        onCatalogChanged: () => {
          this.#cache.changed();
        },
        onUnwatch: (services) => {
          this.#sync.unsubscribe(services);
          for (const s of services) this.#cache.changed(s);
          this.#log.debug('unwatched idle services', { services: services.length });
        },
        inUse: (service) => existingXdsView(this.#endpoints)?.watches(service) === true,
      },
      { maxWatches: config.maxWatches },
    );
    // Checked at half the idle time: a watch goes between 1x and 1.5x the idle time after its last read.
    this.#evictTimer = setInterval(
      () => {
        this.view.evictIdle(config.watchIdleMs);
      },
      Math.max(50, Math.floor(config.watchIdleMs / 2)),
    );
    this.#evictTimer.unref();
    this.#config = config;
    this.federation = new FederationView(config.datacenter);
    this.datacenters = new DatacenterReads(this.federation, this.view);
    this.#endpoints = new ViewEndpoints(
      this.view,
      { zone: config.zone, region: config.region },
      (s) => this.local.byName(s).length > 0,
      this.federation,
    );
    this.#cache = new ViewCache(
      path.join(config.dataDir, VIEW_CACHE_FILE),
      this.view,
      logger,
      config.viewCacheWriteIntervalMs,
      this.federation,
    );
    this.#sync = new AgentSync(this.local, this.view, node, {
      link: {
        urls: config.upstream,
        token: config.token,
        datacenter: config.datacenter,
        tls: config.tls,
        connectTimeoutMs: config.connectTimeoutMs,
        maxFrameBytes: config.maxFrameBytes,
        backoff: {
          initialMs: config.backoffInitialMs,
          maxMs: config.backoffMaxMs,
          multiplier: 2,
          jitter: 0.5,
        },
      },
      fullSyncIntervalMs: config.fullSyncIntervalMs,
      logger,
    });
    this.#store = new LocalStore(config.dataDir, this.local, () => this.checks.persisted(), logger);
    this.#registrations = new AgentRegistrations({
      local: this.local,
      checks: this.checks,
      store: this.#store,
      drainMs: config.drainMs,
      linkOpen: () => this.#sync.state === 'open',
      left: (why) => this.#left?.(why),
      log: logger,
    });
    this.#sync.onStateChange(() => {
      this.#openStatus = undefined;
    });
    this.#sync.onDatacenters((frame, receivedAt) => {
      if (frame.local !== config.datacenter)
        this.#log.warn('session reports another data center', {
          datacenter: config.datacenter,
          session: frame.local,
        });
      if (this.federation.apply(frame, receivedAt)) this.#cache.federationChanged();
    });
    this.local.onChange((c) => {
      this.view.localChanged(c.kind === 'upsert' ? c.record.def.name : c.tombstone.service);
      this.view.catalogLocalChanged();
    });
    this.#files =
      config.configDir === ''
        ? undefined
        : new DefinitionFiles(
            config.configDir,
            config.configReloadMs,
            {
              checkRules: this.checks.rules,
              register: (r) => this.register(r),
              deregister: (id) => this.deregister(id),
            },
            logger,
          );
    const router = new JsonRouter();
    addConsulRoutes(router, this);
    addCheckRoutes(router, this);
    addProbeRoutes(router, { ready: () => this.#started });
    router.add('GET', '/v1/meshreg/health', () => ({
      status: 200,
      body: healthView(this.#sync, this.local, this.view, this.federation),
    }));
    router.add('PUT', '/v1/agent/leave', async (req) => {
      assertMayLeave(req.context);
      await this.leave();
      return { status: 200, body: null };
    });
    router.add('POST', EDS_REST_PATH, (req) =>
      handleDiscoveryRest(req.body, this.#endpoints, {
        wait: req.query.get('wait') ?? undefined,
        signal: req.signal,
        logger,
      }),
    );
    router.add('GET', '/v1/meshreg/sync-status', () => ({
      status: 200,
      body: syncStatusView(this.#sync, this.local, this.view, this.federation),
    }));
    router.add('GET', '/v1/meshreg/metrics', async () => ({
      status: 200,
      text: (await hooks.scrape?.()) ?? '',
      headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' },
    }));
    this.#unregisterMetrics = registerAgentMetrics(node.node, {
      local: this.local,
      view: this.view,
      sync: this.#sync,
    });
    this.#http = new HttpServer(router, {
      extension: hooks.http,
      host: config.host,
      port: config.port,
      maxBodyBytes: config.maxBodyBytes,
      logger,
      limits: config.http,
      localToken: config.security.localToken,
    });
  }

  /** Loads identity and state from the data folder, binds the HTTP API, and connects upstream. */
  static async start(config: AgentConfig, logger: Logger, hooks: AgentHooks = {}): Promise<Agent> {
    await fs.mkdir(config.dataDir, { recursive: true });
    const nodeId = await loadNodeId(config.dataDir);
    const log = logger.child({ role: 'agent', node: config.nodeName });
    const node: NodeIdentity = {
      nodeId,
      node: config.nodeName,
      address: config.nodeAddress,
      zone: config.zone,
      region: config.region,
    };
    const agent = new Agent(config, node, log, hooks);
    await agent.#restore();
    const cached = await agent.#cache.restore();
    // The whole-view file of agents before the per-service cache: a cache, so simply dropped.
    await fs.rm(path.join(config.dataDir, 'view-cache.json'), { force: true });
    if (cached > 0) log.info('restored cached views', { services: cached });
    await agent.#files?.start();
    await agent.#http.listen();
    if (config.xdsPort >= 0) {
      agent.#xds = await startXdsServer({
        host: config.host,
        port: config.xdsPort,
        source: agent.#endpoints,
        logger: log,
      });
    }
    agent.#sync.start();
    agent.#started = true;
    log.info('agent listening', { http: agent.#http.address, upstream: config.upstream });
    return agent;
  }

  get address(): string {
    return this.#http.address;
  }

  /** `host:port` of the gRPC xDS server, or '' when it is off. */
  get xdsAddress(): string {
    return this.#xds === undefined ? '' : `${this.#config.host}:${this.#xds.port}`;
  }

  get port(): number {
    return this.#http.port;
  }

  /** Stops gracefully within `phases`' deadline (default `MESHREG_SHUTDOWN_TIMEOUT_MS`): {@link stopAgent}. */
  async stop(phases = new ShutdownPhases(this.#log, this.#config.shutdownTimeoutMs)): Promise<void> {
    await stopAgent(
      {
        mode: this.#config.shutdownMode,
        drainMs: this.#config.drainMs,
        log: this.#log,
        local: this.local,
        linkOpen: () => this.#sync.state === 'open',
        stopServing: async (waitMs) => {
          await this.#xds?.close();
          return this.#http.drain(waitMs);
        },
        quiesce: () => {
          this.#registrations.stop();
          clearInterval(this.#evictTimer);
          this.#files?.stop();
          this.checks.close();
        },
        flush: () => this.#store.flush().then(() => this.#cache.flush()),
        leaveLink: () => {
          this.#sync.stop();
        },
        // The graceful leave: withdrawn in one batch, confirmed (bounded) before it returns.
        withdrawAll: () => this.leave(),
        closeLink: async () => {
          this.#unregisterMetrics();
          this.#sync.stop();
          await this.#store.close();
          await this.#cache.flush();
        },
      },
      phases,
    );
  }

  // ---- ConsulBackend ----------------------------------------------------------------------------

  get checkRules(): CheckRules {
    return this.checks.rules;
  }

  register(req: RegisterRequest, replaceExistingChecks = false): Promise<void> {
    return this.#registrations.register(req, replaceExistingChecks);
  }

  subscriptionRefusal(service: string): { code: string; message: string } | undefined {
    return this.#sync.subscriptionRefusal(service);
  }

  /** The graceful leave ({@link AgentRegistrations.leave}): everything withdrawn at once, then the process stops. */
  leave(): Promise<void> {
    return this.#registrations.leave();
  }

  /** Deregisters `id`, published as draining for the drain period first ({@link AgentRegistrations.deregister}). */
  deregister(id: string): Promise<void> {
    return this.#registrations.deregister(id);
  }

  /** Persists local state now (after a check route changed it). */
  persist(): Promise<void> {
    return this.#store.saveNodeChecks();
  }

  upstream(): UpstreamStatus {
    if (this.#openStatus !== undefined) return this.#openStatus;
    const status = this.#sync.status();
    // Offline figures grow with time; online ones only change with the link's state.
    if (status.connected) this.#openStatus = status;
    return status;
  }

  #localInstances(service: string): Instance[] {
    return this.local.byName(service).map((r) => toInstance(r, this.node));
  }

  async #restore(): Promise<void> {
    await this.#store.restore((state) => {
      this.local.restore(state);
      this.checks.restore(state, this.#log);
      // A drain that a restart interrupted is over: the service was deregistered.
      for (const r of this.local.list()) if (r.draining === true) this.local.deregister(r.def.id);
      this.#log.info('restored local registrations', { services: this.local.size });
    });
  }
}

async function loadNodeId(dir: string): Promise<string> {
  const file = path.join(dir, NODE_ID_FILE);
  try {
    const id = (await fs.readFile(file, 'utf8')).trim();
    if (/^[0-9a-f-]{36}$/.test(id)) return id;
  } catch {
    // Missing: a new node.
  }
  const id = randomUUID();
  await fs.writeFile(file, id + '\n', { mode: 0o600 });
  return id;
}

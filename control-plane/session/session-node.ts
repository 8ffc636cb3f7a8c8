/**
 * The session role as a process: its role server (the agent link, `/health`, metrics and admin), a
 * {@link SessionServer} for the agents, a member of meta (which hands it the slot table, the data
 * servers and the other sessions), and one link per data server.
 */
import { AGENT_LINK_PATH } from '../../proto/agent-link.js';
import type { Member } from '../../proto/cluster-records.js';
import { FEDERATION_MEMBER } from '../../proto/federation.js';
import { FEDERATION_LINK_PATH } from '../../proto/federation-link.js';
import { META_LINK_PATH } from '../../proto/meta-link.js';
import { valueOrThrow } from '../../proto/result.js';
import type { Logger } from '../../proto/runtime/log.js';
import { loopMonitor } from '../../proto/runtime/loop-monitor.js';
import type { ShutdownPhases } from '../../proto/runtime/shutdown.js';
import { CLUSTER_PROTOCOL_VERSION } from '../../proto/rpc.js';
import { MetaMember, type MemberLinkOptions } from '../link/meta-member.js';
import type { ProtectionOptions } from '../link/protection.js';
import {
  protectionRoutes,
  roleProtection,
  withProtection,
  type RoleProtection,
} from '../link/protection-ops.js';
import { RoleServer, type RoleServerOptions } from '../link/role-server.js';
import { ErrorRing } from '../console/error-ring.js';
import { serveSessionConsole } from '../console/session-console.js';
import { IMPORT_STORE_ID } from '../federation/import-store.js';
import { SessionFederation } from '../federation/session-federation.js';
import { DataRouter } from './data-router.js';
import { RemoteDataClient } from './remote-data.js';
import { sessionAdminRoutes } from './session-ops.js';
import type { SessionOptions } from './session-options.js';
import { SessionServer } from './session-server.js';
import { sendDatacenters, withdrawSubscriptions } from './session-refusals.js';

/** Default of {@link SessionOptions.federationDigestMs}. */
export const DEFAULT_FEDERATION_DIGEST_MS = 6000;

/** Where the role server listens comes from `session`; its link settings are the cluster's. */
export interface SessionNodeOptions
  extends MemberLinkOptions, Omit<RoleServerOptions, 'host' | 'port' | 'token'> {
  readonly session: SessionOptions;
  readonly clusterToken: string;
  /** Called once a drain asked by meta is complete: no agent is connected any more. */
  readonly onDrained?: () => void;
  /** Protection mode of connection-grace drops (default: 15 % in 60 s, at least 1). */
  readonly protection?: ProtectionOptions;
}

export class SessionNode {
  readonly server: SessionServer;
  readonly #role: RoleServer;
  readonly #opts: SessionNodeOptions;
  readonly #router = new DataRouter();
  readonly #data = new Map<string, RemoteDataClient>();
  readonly #log: Logger;
  /** This session's recent errors, for the console. */
  readonly #errors: ErrorRing;
  #peers: string[] = [];
  #meta: MetaMember | undefined;
  readonly #protection: RoleProtection;
  /** Links to the federated data centers and the copies learned from them. */
  readonly #federation: SessionFederation;
  /** A drain asked by meta completed: no agent is connected any more. */
  #drained = false;

  constructor(opts: SessionNodeOptions) {
    this.#opts = opts;
    this.#errors = new ErrorRing('session', () => opts.session.id);
    this.#log = this.#errors.wrap(opts.session.logger.child({ role: 'session', sessionId: opts.session.id }));
    // The write path removes what a release hands back: it holds the connections in grace.
    this.#protection = roleProtection(
      { role: 'session', kind: 'connections', id: () => opts.session.id },
      opts.protection,
      this.#log,
    );
    const agents = {
      ...opts.session,
      logger: this.#errors.wrap(opts.session.logger),
      protection: this.#protection.protection,
    };
    this.server = new SessionServer(agents, this.#router);
    this.server.setPeers(() => this.#peers);
    this.#federation = this.#startFederation(opts);
    this.#role = new RoleServer(
      'session',
      { ...opts, host: agents.host, port: agents.port, token: opts.clusterToken },
      this.#log,
      () => withProtection(this.#health(), this.#protection),
    )
      .socket(AGENT_LINK_PATH, agents, (ws, req) => {
        this.server.accept(ws, req);
      })
      .linkWith(FEDERATION_LINK_PATH, this.#federation.policy())
      .ops([...sessionAdminRoutes(this.server), ...protectionRoutes(this.#protection)]);
  }

  get url(): string {
    return this.server.url;
  }

  async start(): Promise<void> {
    loopMonitor.start();
    await this.#role.listen();
    const advertised = this.#opts.session.advertiseUrl;
    this.server.listening(advertised !== '' ? advertised : this.#role.url(AGENT_LINK_PATH));
    this.#log.info('session listening', { url: this.server.url });
    if (!this.#opts.metaUrl.endsWith(META_LINK_PATH))
      this.#log.warn('meta URL does not end with the meta link path', { url: this.#opts.metaUrl });
    this.#meta = new MetaMember(
      {
        ...this.#opts,
        hello: {
          role: 'session',
          id: this.server.sessionId,
          url: this.server.url,
          protocolVersion: CLUSTER_PROTOCOL_VERSION,
          token: this.#opts.clusterToken,
        },
        logger: this.#log,
      },
      {
        table: (t) => {
          if (this.#router.applyTable(t)) this.server.tableChanged();
        },
        members: (m) => {
          this.#syncDataServers(m.data);
          this.#peers = m.sessions.map((s) => s.url);
        },
        switches: (sw) => {
          this.server.applySwitches(sw);
        },
        federation: (config) => {
          if (this.#federation.apply(config))
            this.#log.info('federation configuration applied', {
              version: config.version,
              peers: config.peers.map((p) => ({ name: p.name, exports: p.exports })),
            });
        },
        drain: () => {
          void this.server.drain().then(() => {
            this.#drained = true;
            this.#opts.onDrained?.();
          });
        },
        serve: (peer) => {
          peer.handle(FEDERATION_MEMBER.status, () => this.#federation.status());
          serveSessionConsole(
            peer,
            this.server.consoleSource(),
            this.server.console,
            this.#errors,
            this.#protection,
          );
        },
      },
    );
    this.#meta.start();
  }

  /**
   * Stops. With `phases` (a graceful stop) meta first drains this session, so its agents move to the
   * other sessions, within their deadline; the last session closes its agents with `shutting_down`
   * (1001, going away), which they answer by reconnecting after a jittered backoff.
   */
  async stop(phases?: ShutdownPhases): Promise<void> {
    const drained = (): boolean => this.#drained;
    if (phases !== undefined)
      await this.#meta?.handOverBeforeStop(phases, 'session: hand agents over', drained);
    this.#protection.unregister();
    loopMonitor.stop();
    this.#meta?.stop();
    this.#federation.stop();
    for (const d of this.#data.values()) d.stop();
    this.server.close();
    await this.#role.close();
  }

  #health(): Record<string, unknown> {
    return {
      sessionId: this.server.sessionId,
      ...this.server.stats(),
      draining: this.server.draining,
      metaConnected: this.#meta?.connected === true,
      epoch: this.#router.epoch,
      dataServers: [...this.#data.values()].map((d) => ({ id: d.id, connected: d.connected })),
      datacenter: this.server.datacenter,
      federation: this.#federation.status().peers.map((p) => ({
        name: p.name,
        state: p.state,
        stale: p.stale,
        services: p.services,
        instances: p.instances,
        digests: p.digests,
        repairs: p.repairs,
        importers: p.importers,
      })),
    };
  }

  /** Federation: the import store routed for qualified keys, the exporter fed by the push dispatcher. */
  #startFederation(opts: SessionNodeOptions): SessionFederation {
    const push = this.server.pushDispatcher;
    const federation = new SessionFederation({
      sessionId: opts.session.id,
      datacenter: this.server.datacenter,
      digestMs: opts.session.federationDigestMs ?? DEFAULT_FEDERATION_DIGEST_MS,
      callTimeoutMs: opts.callTimeoutMs,
      maxFrameBytes: opts.maxFrameBytes,
      retry: opts.retry,
      tls: opts.tls,
      logger: this.#log,
      push,
      forKey: (service) => valueOrThrow(this.#router.forKey(service)),
      changed: () => {
        const frame = this.server.datacentersFrame();
        if (frame !== undefined) sendDatacenters(this.server.agentConnections, frame);
      },
      withdraw: (refused) => {
        withdrawSubscriptions(this.server.agentConnections, push, refused);
      },
    });
    this.#router.setImports(federation.store);
    this.server.setFederation(federation);
    push.attachServer(IMPORT_STORE_ID);
    return federation;
  }

  #syncDataServers(members: readonly Member[]): void {
    const wanted = new Map(members.map((m) => [m.id, m]));
    for (const [id, client] of this.#data) {
      if (wanted.get(id)?.url === client.url) continue;
      client.stop();
      this.#data.delete(id);
      this.#router.removeServer(id);
      this.server.detachDataServer(id);
    }
    for (const m of members) {
      if (this.#data.has(m.id)) continue;
      const client = new RemoteDataClient(m, {
        sessionId: this.server.sessionId,
        sessionUrl: this.server.url,
        token: this.#opts.clusterToken,
        callTimeoutMs: this.#opts.callTimeoutMs,
        maxFrameBytes: this.#opts.maxFrameBytes,
        retry: this.#opts.retry,
        tls: this.#opts.tls,
        logger: this.#log,
        collect: (p) => this.server.collect(p),
        onConnected: () => {
          this.server.attachDataServer(m.id);
        },
      });
      this.#data.set(m.id, client);
      this.#router.addServer(client);
      this.server.attachDataServer(m.id);
      client.start();
    }
  }
}

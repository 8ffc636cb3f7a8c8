/**
 * Starts the control-plane roles this process runs (`MESHREG_ROLES`), each on its own port with
 * its own /health, talking to the others over the same links whether they share a process or not.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../proto/runtime/log.js';
import type { ShutdownPhases } from '../proto/runtime/shutdown.js';
import { registerLoopDelayMetric } from '../proto/runtime/loop-metrics.js';
import { describe } from '../proto/validate.js';
import { type Scrape } from './admin/ops-http.js';
import { TokenStore } from './auth/token-store.js';
import { TlsSource } from '../proto/runtime/tls.js';
import type { ControlPlaneConfig } from './config.js';
import { DataNode } from './data/data-node.js';
import { loadFederation } from './federation/federation-config.js';
import { EtcdStore } from './meta/etcd-store.js';
import { EmbeddedStore } from './meta/meta-store.js';
import { MetaNode } from './meta/meta-node.js';
import { SessionNode } from './session/session-node.js';

/** What the entry point lends the roles: the metrics scrape, and what to do when a drain completes. */
export interface ControlPlaneHooks {
  readonly scrape?: Scrape;
  readonly onDrained?: (role: 'data' | 'session') => void;
}

export class ControlPlane {
  meta: MetaNode | undefined;
  data: DataNode | undefined;
  session: SessionNode | undefined;
  readonly #config: ControlPlaneConfig;
  readonly #log: Logger;
  readonly #hooks: ControlPlaneHooks;
  #releaseLoopMetric: (() => void) | undefined;
  #tokens: TokenStore | undefined;
  readonly #onHangup = (): void => {
    this.reloadTokens('SIGHUP');
  };
  #tls: TlsSource | undefined;

  constructor(config: ControlPlaneConfig, logger: Logger, hooks: ControlPlaneHooks = {}) {
    this.#config = config;
    this.#log = logger;
    this.#hooks = hooks;
  }

  /** The addresses of the roles started, for the ready line. */
  addresses(): Record<string, string> {
    const out: Record<string, string> = {};
    if (this.session !== undefined) out['session'] = this.session.url;
    if (this.meta !== undefined) out['meta'] = this.meta.url;
    if (this.data !== undefined) out['data'] = this.data.url;
    return out;
  }

  async start(): Promise<void> {
    this.#releaseLoopMetric ??= registerLoopDelayMetric();
    const c = this.#config;
    // Unusable TLS files stop the start here, naming the variables.
    const tls = TlsSource.load(c.tls);
    if (!tls.ok) throw tls.error;
    this.#tls = tls.value;
    this.#tls?.watch(this.#log);
    const link = {
      tls: this.#tls,
      connLimits: c.connLimits,
      callTimeoutMs: c.link.callTimeoutMs,
      maxFrameBytes: c.link.maxFrameBytes,
      maxHelloBytes: c.link.maxHelloBytes,
      helloTimeoutMs: c.link.helloTimeoutMs,
      retry: c.link.retry,
      heartbeatMs: c.link.heartbeatMs,
    };
    const tokens = this.#openTokens();
    const ops = {
      adminAuth: tokens.adminAuth(),
      adminRemote: c.admin.remote,
      scrape: this.#hooks.scrape,
    };
    if (c.roles.includes('meta')) {
      const federation = loadFederation(c.federation, c.datacenter);
      this.meta = new MetaNode({
        host: c.meta.host,
        port: c.meta.port,
        token: c.clusterToken,
        leaseMs: c.meta.leaseMs,
        warmupMs: c.meta.warmupMs,
        arrangeIntervalMs: c.meta.arrangeIntervalMs,
        slotCount: c.meta.slotCount,
        followers: c.meta.slotFollowers,
        maxLeaderMoves: c.meta.maxLeaderMoves,
        console: { maxStreams: c.meta.consoleMaxStreams },
        federation: federation.config,
        federationStore: federation.store,
        protection: c.protection,
        ...link,
        ops,
        logger: this.#log,
        store: (metaUrl) =>
          c.meta.store === 'etcd'
            ? new EtcdStore({
                endpoints: c.meta.etcdEndpoints,
                prefix: c.meta.etcdPrefix,
                metaUrl,
                leaseTtlS: c.meta.etcdLeaseTtlS,
                logger: this.#log.child({ role: 'meta' }),
              })
            : new EmbeddedStore(),
      });
      await this.meta.start();
    }
    // Members try the metas in turn: their own process's meta first when there is one.
    const metaUrls =
      this.meta === undefined ? c.meta.urls : [this.meta.url, ...c.meta.urls.filter((u) => u !== c.meta.url)];
    const metaUrl = metaUrls.join(',');
    if (c.roles.includes('data')) {
      this.data = new DataNode({
        id: c.data.id,
        host: c.data.host,
        port: c.data.port,
        advertiseHost: c.data.advertiseHost,
        metaUrl,
        token: c.clusterToken,
        slotCount: c.meta.slotCount,
        warmupMs: c.data.warmupMs,
        warmupQuietMs: c.data.warmupQuietMs,
        warmupMaxMs: c.data.warmupMaxMs,
        warmupNotifyMs: c.data.warmupNotifyMs,
        catalogDebounceMs: c.data.catalogDebounceMs,
        sessionGraceMs: c.data.sessionGraceMs,
        migrationTimeoutMs: c.data.migrationTimeoutMs,
        protection: c.protection,
        ...link,
        ops,
        onDrained: () => this.#hooks.onDrained?.('data'),
        logger: this.#log,
      });
      await this.data.start();
    }
    if (c.roles.includes('session')) {
      const s = c.session;
      this.session = new SessionNode({
        session: {
          // Each process incarnation gets its own ID, so a restarted session is never mistaken for the old one.
          id: `${s.id}#${randomBytes(3).toString('hex')}`,
          host: s.host,
          port: s.port,
          advertiseUrl: s.advertiseUrl,
          token: c.token,
          authenticator: tokens,
          maxFrameBytes: s.maxFrameBytes,
          maxHelloBytes: s.maxHelloBytes,
          limits: {
            helloTimeoutMs: s.helloTimeoutMs,
            idleTimeoutMs: s.idleTimeoutMs,
            pingIntervalMs: s.pingIntervalMs,
            maxFramesPerSec: s.maxFramesPerSec,
            frameBurst: s.frameBurst,
            maxQueuedBytes: s.maxQueuedBytes,
          },
          clientGraceMs: s.clientGraceMs,
          coalesceMs: s.pushCoalesceMs,
          ackTimeoutMs: s.pushAckTimeoutMs,
          maxPushRetries: s.pushMaxRetries,
          reconcileIntervalMs: s.reconcileIntervalMs,
          maxSubscriptionsPerAgent: s.maxSubscriptionsPerAgent,
          writeRatePerSec: s.writeRatePerSec,
          writeBurst: s.writeBurst,
          overload: s.overload,
          linkMaxFrameBytes: c.link.maxFrameBytes,
          logger: this.#log,
          datacenter: c.datacenter,
          federationDigestMs: c.federation.digestMs,
        },
        metaUrl,
        clusterToken: c.clusterToken,
        protection: c.protection,
        ...link,
        ops,
        onDrained: () => this.#hooks.onDrained?.('session'),
      });
      await this.session.start();
    }
  }

  /** Re-reads the token policy and token files (SIGHUP does this); false keeps the old tokens. */
  reloadTokens(why: string): boolean {
    return this.#tokens?.reload(why) ?? false;
  }

  /** Loads the tokens (a bad policy refuses the start), watches their files and answers SIGHUP. */
  #openTokens(): TokenStore {
    if (this.#tokens !== undefined) return this.#tokens;
    const c = this.#config;
    const opened = TokenStore.open(
      {
        policyFile: c.tokens.policyFile,
        token: c.token,
        tokenFile: c.tokens.tokenFile,
        adminToken: c.admin.token,
        adminTokenFile: c.tokens.adminTokenFile,
      },
      { logger: this.#log, debounceMs: c.tokens.reloadDebounceMs },
    );
    if (!opened.ok) throw new Error(`tokens: ${describe(opened.errors)}`);
    const tokens = opened.value;
    tokens.onReload(() => this.session?.server.tokensReloaded());
    tokens.watch();
    process.on('SIGHUP', this.#onHangup);
    this.#tokens = tokens;
    return tokens;
  }

  /**
   * Stops session, then data, then meta. With `phases` (a graceful stop, e.g. SIGTERM) the session
   * first hands its agents to the other sessions and the data server its slots to the other data
   * servers (both through meta's drain), each within the phases' deadline; meta then resigns.
   */
  async stop(phases?: ShutdownPhases): Promise<void> {
    process.off('SIGHUP', this.#onHangup);
    this.#tokens?.close();
    const session = this.session;
    const data = this.data;
    const meta = this.meta;
    if (session !== undefined)
      await (phases?.run('session: close', () => session.stop(phases)) ?? session.stop());
    if (data !== undefined) await (phases?.run('data: close', () => data.stop(phases)) ?? data.stop());
    // etcd: the election's lease is revoked, so another meta leads without waiting for it to expire.
    if (meta !== undefined) await (phases?.run('meta: resign and close', () => meta.stop()) ?? meta.stop());
    this.#tls?.close();
    this.#releaseLoopMetric?.();
  }
}

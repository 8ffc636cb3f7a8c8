/**
 * Starts the control-plane roles this process runs (`MESHREG_ROLES`), each on its own port with
 * its own /health, talking to the others over the same links whether they share a process or not.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../proto/runtime/log.js';
import { registerLoopDelayMetric } from '../proto/runtime/loop-metrics.js';
import { sharedAdminToken, type Scrape } from './admin/ops-http.js';
import type { ControlPlaneConfig } from './config.js';
import { DataNode } from './data/data-node.js';
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
    const link = {
      callTimeoutMs: c.link.callTimeoutMs,
      maxFrameBytes: c.link.maxFrameBytes,
      maxHelloBytes: c.link.maxHelloBytes,
      helloTimeoutMs: c.link.helloTimeoutMs,
      retry: c.link.retry,
      heartbeatMs: c.link.heartbeatMs,
    };
    const ops = {
      adminAuth: sharedAdminToken(c.admin.token),
      adminRemote: c.admin.remote,
      scrape: this.#hooks.scrape,
    };
    if (c.roles.includes('meta')) {
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

  async stop(): Promise<void> {
    await this.session?.stop();
    await this.data?.stop();
    await this.meta?.stop();
    this.#releaseLoopMetric?.();
  }
}

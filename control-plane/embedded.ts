/**
 * The whole control plane in one process: meta, one data server and one session server, wired
 * through the same interfaces they use when they run apart.
 */
import type { Logger } from '../proto/log.js';
import type { ControlPlaneConfig } from './config.js';
import { DataServer } from './data/data-server.js';
import { MetaServer } from './meta/meta-server.js';
import { DataRouter } from './session/data-router.js';
import { SessionServer } from './session/session-server.js';

export class EmbeddedControlPlane {
  readonly meta: MetaServer;
  readonly data: DataServer;
  readonly session: SessionServer;
  readonly #router = new DataRouter();

  constructor(config: ControlPlaneConfig, logger: Logger) {
    this.meta = new MetaServer({
      slotCount: config.meta.slotCount,
      followers: config.meta.slotFollowers,
      maxLeaderMoves: config.meta.slotCount,
      logger,
    });
    this.data = new DataServer({
      id: config.data.id,
      warmupMs: config.data.warmupMs,
      catalogDebounceMs: config.data.catalogDebounceMs,
      logger,
    });
    this.#router.addServer(this.data);
    const s = config.session;
    this.session = new SessionServer(
      {
        id: s.id,
        host: s.host,
        port: s.port,
        advertiseUrl: s.advertiseUrl,
        token: config.token,
        maxFrameBytes: s.maxFrameBytes,
        limits: {
          helloTimeoutMs: s.helloTimeoutMs,
          idleTimeoutMs: s.idleTimeoutMs,
          pingIntervalMs: s.pingIntervalMs,
          maxFramesPerSec: s.maxFramesPerSec,
          frameBurst: s.frameBurst,
        },
        clientGraceMs: s.clientGraceMs,
        coalesceMs: s.pushCoalesceMs,
        ackTimeoutMs: s.pushAckTimeoutMs,
        maxPushRetries: s.pushMaxRetries,
        reconcileIntervalMs: s.reconcileIntervalMs,
        logger,
      },
      this.#router,
    );
    this.meta.onTable((table) => {
      this.#router.applyTable(table);
    });
    this.meta.addDataServer(this.data.id);
  }

  async start(): Promise<void> {
    await this.session.listen();
  }

  async stop(): Promise<void> {
    await this.session.close();
    this.data.close();
  }
}

/**
 * The session role as a process: a {@link SessionServer} for agents, a member of meta (which hands
 * it the slot table, the data servers and the other sessions), and one link per data server.
 */
import {
  DRAIN_EVENT,
  SWITCHES_EVENT,
  decodeMembers,
  decodeSlotTable,
  decodeSwitches,
  META_LINK_PATH,
  type Member,
} from '../../proto/cluster-link.js';
import type { Logger } from '../../proto/log.js';
import { CLUSTER_PROTOCOL_VERSION } from '../../proto/rpc.js';
import { opsEndpoints, type OpsOptions } from '../admin/ops-http.js';
import { LinkClient } from '../link/link-client.js';
import { DataRouter } from './data-router.js';
import { RemoteDataClient } from './remote-data.js';
import { SessionServer, type SessionOptions } from './session-server.js';

export interface SessionNodeOptions {
  readonly session: SessionOptions;
  readonly metaUrl: string;
  readonly clusterToken: string;
  readonly heartbeatMs: number;
  readonly callTimeoutMs: number;
  readonly maxFrameBytes: number;
  /** `/metrics` and the admin API on the session port. */
  readonly ops: Omit<OpsOptions, 'logger'>;
  /** Called once a drain asked by meta is complete: no agent is connected any more. */
  readonly onDrained?: () => void;
}

export class SessionNode {
  readonly server: SessionServer;
  readonly #opts: SessionNodeOptions;
  readonly #router = new DataRouter();
  readonly #data = new Map<string, RemoteDataClient>();
  readonly #log: Logger;
  #peers: string[] = [];
  #meta: LinkClient | undefined;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(opts: SessionNodeOptions) {
    this.#opts = opts;
    this.#log = opts.session.logger.child({ role: 'session', sessionId: opts.session.id });
    this.server = new SessionServer(opts.session, this.#router, () => ({
      metaConnected: this.#meta?.peer !== undefined,
      epoch: this.#router.epoch,
      dataServers: [...this.#data.values()].map((d) => ({ id: d.id, connected: d.connected })),
    }));
    this.server.setPeers(() => this.#peers);
    this.server.extend(
      opsEndpoints({ ...opts.ops, logger: this.#log }, [
        {
          method: 'GET',
          path: '/admin/connections',
          handler: () => ({
            status: 200,
            body: { sessionId: this.server.sessionId, connections: this.server.connections() },
          }),
        },
        {
          method: 'GET',
          path: '/admin/switches',
          handler: () => ({ status: 200, body: this.server.switches }),
        },
      ]),
    );
  }

  get url(): string {
    return this.server.url;
  }

  async start(): Promise<void> {
    await this.server.listen();
    if (!this.#opts.metaUrl.endsWith(META_LINK_PATH))
      this.#log.warn('meta URL does not end with the meta link path', { url: this.#opts.metaUrl });
    this.#meta = new LinkClient(
      {
        url: this.#opts.metaUrl,
        hello: {
          role: 'session',
          id: this.server.sessionId,
          url: this.server.url,
          protocolVersion: CLUSTER_PROTOCOL_VERSION,
          token: this.#opts.clusterToken,
        },
        callTimeoutMs: this.#opts.callTimeoutMs,
        maxFrameBytes: this.#opts.maxFrameBytes,
        retryMinMs: 50,
        retryMaxMs: 2000,
        logger: this.#log,
      },
      {
        setup: (peer) => {
          peer.on('table', (raw) => {
            const t = decodeSlotTable(raw);
            if (!t.ok) {
              this.#log.error('invalid slot table from meta', { errors: t.errors });
              return;
            }
            if (this.#router.applyTable(t.value)) this.server.tableChanged();
          });
          peer.on('members', (raw) => {
            const m = decodeMembers(raw);
            if (!m.ok) return;
            this.#syncDataServers(m.value.data);
            this.#peers = m.value.sessions.map((s) => s.url);
          });
          peer.on(SWITCHES_EVENT, (raw) => {
            const sw = decodeSwitches(raw);
            if (sw.ok) this.server.applySwitches(sw.value);
            else this.#log.error('invalid switches from meta', { errors: sw.errors });
          });
          peer.on(DRAIN_EVENT, () => {
            void this.server.drain().then(() => this.#opts.onDrained?.());
          });
        },
      },
    );
    this.#meta.start();
    this.#heartbeat = setInterval(() => {
      this.#meta?.peer?.callVoid('heartbeat', { id: this.server.sessionId }).catch(() => undefined);
    }, this.#opts.heartbeatMs);
    this.#heartbeat.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#heartbeat);
    this.#meta?.stop();
    for (const d of this.#data.values()) d.stop();
    await this.server.close();
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

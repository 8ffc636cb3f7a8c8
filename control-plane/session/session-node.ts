/**
 * The session role as a process: a {@link SessionServer} for agents, a member of meta (which hands
 * it the slot table, the data servers and the other sessions), and one link per data server.
 */
import type { Member } from '../../proto/cluster-records.js';
import { META_LINK_PATH } from '../../proto/meta-link.js';
import type { Logger } from '../../proto/runtime/log.js';
import { CLUSTER_PROTOCOL_VERSION } from '../../proto/rpc.js';
import { opsEndpoints, type OpsOptions } from '../admin/ops-http.js';
import { MetaMember } from '../link/meta-member.js';
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
  #meta: MetaMember | undefined;

  constructor(opts: SessionNodeOptions) {
    this.#opts = opts;
    this.#log = opts.session.logger.child({ role: 'session', sessionId: opts.session.id });
    this.server = new SessionServer(opts.session, this.#router, () => ({
      metaConnected: this.#meta?.connected === true,
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
    this.#meta = new MetaMember(
      {
        urls: this.#opts.metaUrl,
        hello: {
          role: 'session',
          id: this.server.sessionId,
          url: this.server.url,
          protocolVersion: CLUSTER_PROTOCOL_VERSION,
          token: this.#opts.clusterToken,
        },
        heartbeatMs: this.#opts.heartbeatMs,
        callTimeoutMs: this.#opts.callTimeoutMs,
        maxFrameBytes: this.#opts.maxFrameBytes,
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
        drain: () => {
          void this.server.drain().then(() => this.#opts.onDrained?.());
        },
      },
    );
    this.#meta.start();
  }

  async stop(): Promise<void> {
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

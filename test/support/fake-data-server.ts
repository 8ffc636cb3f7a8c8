/**
 * A data server for tests of the session's data client: serves the `DATA_LINK` contract with a real
 * RpcPeer over a real loopback WebSocket server (port 0), records what sessions declare, and can
 * fail, fall silent, or drop every link on demand.
 */
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { RpcPeer } from '../../control-plane/link/rpc-peer.js';
import type { DatumChange } from '../../proto/cluster-records.js';
import { DATA_LINK, DATA_LINK_PATH, type InterestParams } from '../../proto/data-link.js';
import { MeshregError, type ErrorCode } from '../../proto/errors.js';
import { HELLO_METHOD, type LinkHello } from '../../proto/rpc.js';
import { silentLogger } from '../../proto/runtime/log.js';

export class FakeDataServer {
  readonly #wss: WebSocketServer;
  readonly #peers = new Set<RpcPeer>();
  /** Every hello accepted, in order. */
  readonly hellos: LinkHello[] = [];
  /** Every `interest` request received, in order. */
  readonly interest: InterestParams[] = [];
  /** When set, the data methods (`fetch`, `dropOwner`) fail with this code. */
  failWith: ErrorCode | undefined;
  /** While true, the data methods are never answered. */
  silent = false;

  private constructor(wss: WebSocketServer) {
    this.#wss = wss;
    wss.on('connection', (ws) => {
      this.#serve(new RpcPeer(ws, { callTimeoutMs: 5000, logger: silentLogger, pageBytes: 64 * 1024 }));
    });
  }

  static async start(): Promise<FakeDataServer> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: DATA_LINK_PATH });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    return new FakeDataServer(wss);
  }

  get url(): string {
    const a = this.#wss.address() as AddressInfo;
    return `ws://127.0.0.1:${a.port}${DATA_LINK_PATH}`;
  }

  /** Links open now. */
  get links(): number {
    return [...this.#peers].filter((p) => p.isOpen).length;
  }

  /** Sends a change notice on every open link. */
  emitChanges(changes: readonly DatumChange[]): void {
    for (const p of this.#peers) p.emit(DATA_LINK.changes, { changes });
  }

  /** Drops every link at once, without a closing handshake (a crash or a network cut). */
  dropLinks(): void {
    for (const p of this.#peers) p.terminate();
  }

  async close(): Promise<void> {
    this.dropLinks();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }

  #serve(peer: RpcPeer): void {
    this.#peers.add(peer);
    void peer.closed.then(() => this.#peers.delete(peer));
    peer.handle(HELLO_METHOD, (hello) => {
      this.hellos.push(hello);
      return { id: 'fake-data' };
    });
    peer.handle(DATA_LINK.interest, (p) => {
      this.interest.push(p);
    });
    peer.handle(DATA_LINK.fetch, (p) =>
      this.#answer(() => ({ key: p.key, version: 1, complete: true, instances: [] })),
    );
    peer.handle(DATA_LINK.dropOwner, () => this.#answer(() => undefined));
  }

  /** `value()`, unless the server is set to fail or to stay silent. */
  async #answer<T>(value: () => T): Promise<T> {
    if (this.silent) return new Promise<never>(() => undefined);
    if (this.failWith !== undefined) throw new MeshregError(this.failWith, 'fake data server refused');
    return Promise.resolve(value());
  }
}

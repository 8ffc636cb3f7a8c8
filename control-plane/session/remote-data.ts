/**
 * A data server in another process, seen through the data link: the same {@link DataApi} a session
 * uses in-process. Interest is batched per tick and re-declared in full after every reconnect; the
 * data server's `collect` requests are answered from the session's own records.
 */
import type { Member, OwnedPublisher } from '../../proto/cluster-records.js';
import { DATA_LINK, type CollectParams } from '../../proto/data-link.js';
import type { Logger } from '../../proto/runtime/log.js';
import type { TlsSource } from '../../proto/runtime/tls.js';
import { CLUSTER_PROTOCOL_VERSION } from '../../proto/rpc.js';
import { attempt, type Result } from '../../proto/result.js';
import { withTraceparent } from '../../proto/trace-context.js';
import type { UnpublishOutcome } from '../../proto/write-outcomes.js';
import type {
  CatalogView,
  ChangeListener,
  DataApi,
  DataWatch,
  DatumView,
  PublishItem,
  PublishOutcome,
  SessionWatcher,
  UnpublishItem,
} from '../link/data-api.js';
import { LinkClient, type LinkRetry } from '../link/link-client.js';
import { MeshregError } from '../../proto/errors.js';
import type { RpcPeer } from '../link/rpc-peer.js';

export interface RemoteDataOptions {
  readonly sessionId: string;
  readonly sessionUrl: string;
  readonly token: string;
  readonly callTimeoutMs: number;
  readonly maxFrameBytes: number;
  /** Reconnect delays of the link. */
  readonly retry: LinkRetry;
  /** TLS of the link (none: plain). */
  readonly tls?: TlsSource | undefined;
  readonly logger: Logger;
  /** Answers a migrating data server: this session's publishers in `slots`. */
  readonly collect: (p: CollectParams) => OwnedPublisher[];
  /** Called after every (re)connect, so the session can retry what failed meanwhile. */
  readonly onConnected: () => void;
}

export class RemoteDataClient implements DataApi {
  readonly id: string;
  readonly #client: LinkClient;
  readonly #watchers = new Map<string, SessionWatcher>();
  #pendingAdd = new Set<string>();
  #pendingRemove = new Set<string>();
  #pendingCatalog: boolean | undefined;
  #flushScheduled = false;

  constructor(member: Member, opts: RemoteDataOptions) {
    this.id = member.id;
    this.#client = new LinkClient(
      {
        url: member.url,
        hello: {
          role: 'session',
          id: opts.sessionId,
          url: opts.sessionUrl,
          protocolVersion: CLUSTER_PROTOCOL_VERSION,
          token: opts.token,
        },
        callTimeoutMs: opts.callTimeoutMs,
        maxFrameBytes: opts.maxFrameBytes,
        retry: opts.retry,
        tls: opts.tls,
        logger: opts.logger.child({ dataId: member.id }),
      },
      {
        setup: (peer) => {
          this.#setup(peer, opts);
        },
        ready: (peer) => {
          this.#ready(peer, opts);
        },
      },
    );
  }

  get url(): string {
    return this.#client.url;
  }

  get connected(): boolean {
    return this.#client.peer !== undefined;
  }

  start(): void {
    this.#client.start();
  }

  stop(): void {
    this.#client.stop();
  }

  publish(
    owner: string,
    items: readonly PublishItem[],
    epoch: number,
    traceparent?: string,
  ): Promise<Result<readonly PublishOutcome[]>> {
    const p = { epoch, owner, items, ...withTraceparent(traceparent) };
    // A link that is down, or a call that times out, is `unavailable`: a value, not a rejection.
    return attempt(async () => (await this.#peer().call(DATA_LINK.publish, p)).outcomes);
  }

  unpublish(items: readonly UnpublishItem[], epoch: number): Promise<Result<readonly UnpublishOutcome[]>> {
    const p = { epoch, items };
    return attempt(async () => (await this.#peer().call(DATA_LINK.unpublish, p)).outcomes);
  }

  async dropOwner(owner: string): Promise<void> {
    return await this.#peer().call(DATA_LINK.dropOwner, { owner });
  }

  async fetch(key: string): Promise<DatumView> {
    return await this.#peer().call(DATA_LINK.fetch, { key });
  }

  async fetchCatalog(): Promise<CatalogView> {
    return await this.#peer().call(DATA_LINK.fetchCatalog, {});
  }

  async versions(keys: readonly string[]): Promise<ReadonlyMap<string, number>> {
    const r = await this.#peer().call(DATA_LINK.versions, { keys });
    return new Map(Object.entries(r.versions));
  }

  watch(sessionId: string, listener: ChangeListener): DataWatch {
    const w: SessionWatcher = { listener, keys: new Set(), catalog: false };
    this.#watchers.set(sessionId, w);
    return {
      interest: (key, on) => {
        if (on === w.keys.has(key)) return;
        if (on) {
          w.keys.add(key);
          this.#pendingRemove.delete(key);
          this.#pendingAdd.add(key);
        } else {
          w.keys.delete(key);
          this.#pendingAdd.delete(key);
          this.#pendingRemove.add(key);
        }
        this.#scheduleFlush();
      },
      catalogInterest: (on) => {
        w.catalog = on;
        this.#pendingCatalog = on;
        this.#scheduleFlush();
      },
      close: () => {
        this.#watchers.delete(sessionId);
      },
    };
  }

  #peer(): RpcPeer {
    const p = this.#client.peer;
    if (p === undefined) throw new MeshregError('unavailable', `data server ${this.id} is not connected`);
    return p;
  }

  #setup(peer: RpcPeer, opts: RemoteDataOptions): void {
    // Paged: the answer can exceed one frame (every publisher of this session in the slots).
    peer.handlePaged(DATA_LINK.collect, (p) => opts.collect(p));
    peer.on(DATA_LINK.changes, ({ changes }) => {
      for (const w of this.#watchers.values()) w.listener.onChange(changes.filter((x) => w.keys.has(x.key)));
    });
    peer.on(DATA_LINK.catalog, ({ version }) => {
      for (const w of this.#watchers.values()) if (w.catalog) w.listener.onCatalogChange(version);
    });
  }

  #ready(peer: RpcPeer, opts: RemoteDataOptions): void {
    // A new link knows nothing: declare the whole interest again.
    const keys = new Set<string>();
    let catalog = false;
    for (const w of this.#watchers.values()) {
      for (const k of w.keys) keys.add(k);
      catalog ||= w.catalog;
    }
    this.#pendingAdd = new Set();
    this.#pendingRemove = new Set();
    this.#pendingCatalog = undefined;
    peer.call(DATA_LINK.interest, { add: [...keys], remove: [], catalog }).catch(() => undefined);
    opts.onConnected();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      const peer = this.#client.peer;
      if (peer === undefined) return; // re-declared in full on connect
      const add = [...this.#pendingAdd];
      const remove = [...this.#pendingRemove];
      const catalog = this.#pendingCatalog;
      this.#pendingAdd.clear();
      this.#pendingRemove.clear();
      this.#pendingCatalog = undefined;
      if (add.length === 0 && remove.length === 0 && catalog === undefined) return;
      peer
        .call(DATA_LINK.interest, catalog === undefined ? { add, remove } : { add, remove, catalog })
        .catch(() => undefined);
    });
  }
}

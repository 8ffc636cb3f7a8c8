/**
 * The state-of-the-world protocol of one gRPC xDS stream (ADS, or EDS alone), independent of the
 * transport so it can be tested without sockets. Per type URL it keeps the last nonce, version and
 * names sent, and one parked watch (xds_protocol "ACK and NACK semantics"):
 * - a request whose `response_nonce` is not the latest nonce of its type is stale and ignored;
 * - a NACK (`error_detail` set) re-parks at the rejected version, so the same content is not
 *   pushed again; the next change is;
 * - any other request replaces the type's subscription and watch.
 */
import { MeshregError } from '../../proto/errors.js';
import { silentLogger, type Logger } from '../../proto/runtime/log.js';
import { isRecord } from '../../proto/validate.js';
import { readCallerGrpc, type XdsCaller } from './caller.js';
import type { CacheResponse, CachedResource } from './snapshot-cache.js';
import { isResourceTypeUrl, type ResourceTypeUrl } from './type-urls.js';
import type { XdsView } from './xds-view.js';

/** A DiscoveryResponse as handed to the transport; `resources` are already encoded by `encode`. */
export interface OutgoingResponse<R> {
  readonly version_info: string;
  readonly resources: readonly R[];
  readonly type_url: string;
  readonly nonce: string;
}

/** Options of {@link SotwStream}. */
export interface SotwStreamOptions<R> {
  readonly view: XdsView;
  /** Unique per stream; subscriptions are recorded under it. */
  readonly streamId: string;
  readonly send: (response: OutgoingResponse<R>) => void;
  readonly encode: (resource: CachedResource, typeUrl: ResourceTypeUrl) => R;
  /** The type a single-type service (EDS) implies when a request leaves `type_url` empty. */
  readonly defaultTypeUrl?: ResourceTypeUrl;
  readonly logger?: Logger;
}

interface TypeState {
  nonce: string;
  version: string;
  names: ReadonlySet<string>;
  cancel: () => void;
}

const MAX_NAMES = 10_000;

/** One stream's SotW state machine. Feed it decoded requests; it calls `send` with responses. */
export class SotwStream<R> {
  readonly #opts: SotwStreamOptions<R>;
  readonly #logger: Logger;
  readonly #types = new Map<ResourceTypeUrl, TypeState>();
  #node: string | undefined;
  /** The locality and scope of the node, from its first request like the node id. */
  #caller: XdsCaller = {};
  /** The key the view files this stream's node under (set by the first subscription). */
  #nodeKey: string | undefined;
  #nonce = 0;
  #closed = false;

  constructor(options: SotwStreamOptions<R>) {
    this.#opts = options;
    this.#logger = options.logger ?? silentLogger;
  }

  /**
   * Handles one request. Returns a MeshregError('invalid_argument') for a request that breaks the
   * protocol; the transport should end this stream only (invariant 5).
   */
  onRequest(raw: unknown): MeshregError | undefined {
    if (this.#closed) return undefined;
    const request = readRequest(raw);
    if (request instanceof MeshregError) return request;
    // The node is sent on the first request only (xds_protocol "Streaming gRPC subscriptions").
    if (this.#node === undefined) {
      const caller = readCallerGrpc(request.node);
      if (caller instanceof MeshregError) return caller;
      this.#node = request.nodeId;
      this.#caller = caller;
    }
    const typeUrl = request.typeUrl === '' ? this.#opts.defaultTypeUrl : request.typeUrl;
    if (typeUrl === undefined) return new MeshregError('invalid_argument', 'type_url is required on ADS');
    if (!isResourceTypeUrl(typeUrl)) {
      this.#logger.debug('xds: request for a type we do not serve', { typeUrl });
      return undefined;
    }
    const state = this.#types.get(typeUrl);
    if (state !== undefined && request.responseNonce !== '' && request.responseNonce !== state.nonce) {
      return undefined; // stale: superseded by a response the client has not seen yet
    }
    if (request.nack !== undefined) {
      this.#logger.warn('xds: client rejected an update', {
        node: this.#node,
        typeUrl,
        version: state?.version,
        error: request.nack,
      });
    }
    this.#watch(this.#node, typeUrl, request, state);
    return undefined;
  }

  /** Ends the stream: cancels parked watches and drops its subscriptions. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const [typeUrl, state] of this.#types) {
      state.cancel();
      if (this.#nodeKey !== undefined) this.#opts.view.unsubscribe(this.#nodeKey, this.#subscriber(typeUrl));
    }
    this.#types.clear();
  }

  #watch(node: string, typeUrl: ResourceTypeUrl, request: ParsedRequest, state: TypeState | undefined): void {
    state?.cancel();
    const acked =
      state !== undefined && (request.nack !== undefined || request.versionInfo === state.version);
    // After a NACK the client keeps its old version; watching from the rejected one avoids a resend loop.
    const versionInfo =
      request.nack !== undefined && state !== undefined ? state.version : request.versionInfo;
    const next: TypeState = state ?? { nonce: '', version: '', names: new Set(), cancel: () => undefined };
    next.cancel = () => undefined;
    this.#types.set(typeUrl, next);
    const key = this.#opts.view.subscribe(
      node,
      this.#subscriber(typeUrl),
      request.names,
      false,
      this.#caller,
    );
    this.#nodeKey = key;
    const names = request.names;
    next.cancel = this.#opts.view.cache.createWatch(
      key,
      { typeUrl, versionInfo, names, knownNames: acked ? next.names : new Set() },
      (answer) => {
        this.#respond(next, answer, names);
      },
    );
  }

  #respond(state: TypeState, answer: CacheResponse, names: readonly string[]): void {
    if (this.#closed) return;
    this.#nonce += 1;
    state.nonce = String(this.#nonce);
    state.version = answer.version;
    state.names = new Set(names);
    state.cancel = () => undefined;
    const typeUrl = answer.typeUrl as ResourceTypeUrl;
    this.#opts.send({
      version_info: answer.version,
      resources: answer.resources.map((r) => this.#opts.encode(r, typeUrl)),
      type_url: answer.typeUrl,
      nonce: state.nonce,
    });
  }

  #subscriber(typeUrl: string): string {
    return `${this.#opts.streamId}|${typeUrl}`;
  }
}

interface ParsedRequest {
  readonly nodeId: string;
  readonly typeUrl: string;
  readonly versionInfo: string;
  readonly responseNonce: string;
  readonly names: readonly string[];
  /** The raw node, read for locality and scope on the first request. */
  readonly node: unknown;
  readonly nack?: string;
}

/** Checks the shape of a decoded DiscoveryRequest (snake_case fields, as the loader keeps them). */
function readRequest(raw: unknown): ParsedRequest | MeshregError {
  if (!isRecord(raw)) return new MeshregError('invalid_argument', 'request must be a DiscoveryRequest');
  const str = (v: unknown): string | undefined =>
    v === undefined || v === null ? '' : typeof v === 'string' ? v : undefined;
  const typeUrl = str(raw['type_url']);
  const versionInfo = str(raw['version_info']);
  const responseNonce = str(raw['response_nonce']);
  const node = isRecord(raw['node']) ? str(raw['node']['id']) : '';
  const names = raw['resource_names'] ?? [];
  if (
    typeUrl === undefined ||
    versionInfo === undefined ||
    responseNonce === undefined ||
    node === undefined
  ) {
    return new MeshregError(
      'invalid_argument',
      'type_url, version_info, response_nonce and node.id must be strings',
    );
  }
  if (!Array.isArray(names) || names.length > MAX_NAMES || !names.every((n) => typeof n === 'string')) {
    return new MeshregError('invalid_argument', `resource_names must be at most ${MAX_NAMES} strings`);
  }
  const detail = raw['error_detail'];
  const nack = isRecord(detail)
    ? typeof detail['message'] === 'string' && detail['message'] !== ''
      ? detail['message']
      : 'rejected'
    : undefined;
  return {
    nodeId: node,
    typeUrl,
    versionInfo,
    responseNonce,
    names,
    node: raw['node'],
    ...(nack === undefined ? {} : { nack }),
  };
}

/**
 * Versioned resources per node, in the manner of go-control-plane's snapshot cache: for each node
 * key and type URL, one map of resources and one opaque version string that only grows. A request
 * whose `version_info` is current is parked as a watch and answered once, when the resources
 * change; the client's next request (its ACK) opens the next watch (xds_protocol "ACK and NACK
 * semantics", "When to send an update").
 *
 * Versions come from a time-based clock so they keep growing across agent restarts: a client that
 * reconnects holding "an old version" never sees that string reused for different content.
 */
import { VersionClock } from '../../proto/version.js';

/** One resource with a digest of its content, to tell a real change from a rebuild. */
export interface CachedResource {
  readonly name: string;
  readonly body: Readonly<Record<string, unknown>>;
  readonly digest: string;
}

/** Wraps a resource body; the digest is its JSON text (bodies are built deterministically). */
export function cachedResource(name: string, body: Readonly<Record<string, unknown>>): CachedResource {
  return { name, body, digest: JSON.stringify(body) };
}

/** What a watch or fetch answers: the current version and the requested resources of one type. */
export interface CacheResponse {
  readonly typeUrl: string;
  readonly version: string;
  readonly resources: readonly CachedResource[];
}

/** A client's request for one type, as far as the cache cares. */
export interface WatchRequest {
  readonly typeUrl: string;
  /** The version the client last accepted ("" at first). */
  readonly versionInfo: string;
  /** Requested names; empty means every resource of the type (wildcard, LDS/CDS only). */
  readonly names: readonly string[];
  /** Names the client already received at `versionInfo`; a name outside it is answered at once. */
  readonly knownNames?: ReadonlySet<string>;
}

/** Receives the single answer of a watch. */
export type Respond = (response: CacheResponse) => void;

interface Watch {
  readonly request: WatchRequest;
  readonly respond: Respond;
}

interface TypeEntry {
  version: string;
  resources: ReadonlyMap<string, CachedResource>;
  readonly watches: Set<Watch>;
}

/** Per-node, per-type versioned resources with parked watches. Not thread-safe; Node is single-threaded. */
export class SnapshotCache {
  readonly #nodes = new Map<string, Map<string, TypeEntry>>();
  readonly #clock: VersionClock;

  constructor(options: { readonly clock?: VersionClock } = {}) {
    this.#clock = options.clock ?? new VersionClock();
  }

  /**
   * Replaces the resources of one type for a node. The version grows only when the content
   * differs; then every parked watch that is now out of date is answered. Returns whether it changed.
   */
  setResources(node: string, typeUrl: string, resources: readonly CachedResource[]): boolean {
    const entry = this.#entry(node, typeUrl);
    const next = new Map(resources.map((r) => [r.name, r]));
    if (sameContent(entry.resources, next)) return false;
    entry.resources = next;
    entry.version = String(this.#clock.next(Number(entry.version) || 0));
    for (const watch of [...entry.watches]) {
      if (!isOutOfDate(entry, watch.request)) continue;
      entry.watches.delete(watch);
      watch.respond(responseOf(entry, watch.request));
    }
    return true;
  }

  /** The node's current version of a type ("" when nothing was ever set). */
  version(node: string, typeUrl: string): string {
    return this.#nodes.get(node)?.get(typeUrl)?.version ?? '';
  }

  /** Answers now, or `undefined` when the client is up to date (REST turns that into 304). */
  fetch(node: string, request: WatchRequest): CacheResponse | undefined {
    const entry = this.#nodes.get(node)?.get(request.typeUrl);
    if (entry === undefined || !isOutOfDate(entry, request)) return undefined;
    return responseOf(entry, request);
  }

  /**
   * Answers at once (calling `respond` before returning) when the client is out of date, else parks
   * the request until a change. Returns a function that cancels a parked watch.
   */
  createWatch(node: string, request: WatchRequest, respond: Respond): () => void {
    const entry = this.#entry(node, request.typeUrl);
    if (isOutOfDate(entry, request)) {
      respond(responseOf(entry, request));
      return () => undefined;
    }
    const watch: Watch = { request, respond };
    entry.watches.add(watch);
    return () => {
      entry.watches.delete(watch);
    };
  }

  /** Number of parked watches, for a node or in all; for tests and metrics. */
  watchCount(node?: string): number {
    let count = 0;
    for (const [key, types] of this.#nodes) {
      if (node !== undefined && key !== node) continue;
      for (const entry of types.values()) count += entry.watches.size;
    }
    return count;
  }

  /** Node keys the cache holds state for. */
  nodeKeys(): string[] {
    return [...this.#nodes.keys()];
  }

  /** Forgets a node; its parked watches are dropped without an answer. */
  deleteNode(node: string): void {
    this.#nodes.delete(node);
  }

  #entry(node: string, typeUrl: string): TypeEntry {
    let types = this.#nodes.get(node);
    if (types === undefined) {
      types = new Map();
      this.#nodes.set(node, types);
    }
    let entry = types.get(typeUrl);
    if (entry === undefined) {
      entry = { version: '', resources: new Map(), watches: new Set() };
      types.set(typeUrl, entry);
    }
    return entry;
  }
}

/**
 * Out of date: a different version, or a requested name that exists but was never sent at this
 * version (a newly subscribed name must not wait for the next change; go-control-plane does the same).
 */
function isOutOfDate(entry: TypeEntry, request: WatchRequest): boolean {
  if (entry.version === '') return false;
  if (request.versionInfo !== entry.version) return true;
  const known = request.knownNames;
  if (known === undefined) return false;
  return request.names.some((name) => !known.has(name) && entry.resources.has(name));
}

function responseOf(entry: TypeEntry, request: WatchRequest): CacheResponse {
  const resources =
    request.names.length === 0
      ? [...entry.resources.values()]
      : [...new Set(request.names)].flatMap((name) => {
          const r = entry.resources.get(name);
          return r === undefined ? [] : [r];
        });
  return { typeUrl: request.typeUrl, version: entry.version, resources };
}

function sameContent(
  a: ReadonlyMap<string, CachedResource>,
  b: ReadonlyMap<string, CachedResource>,
): boolean {
  if (a.size !== b.size) return false;
  for (const [name, r] of a) if (b.get(name)?.digest !== r.digest) return false;
  return true;
}

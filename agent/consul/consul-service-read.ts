/**
 * `GET /v1/health/service/:name` and `GET /v1/catalog/service/:name`, answered from the local view.
 *
 * A read has one or more parts, each a watched key with its data center: the service itself (the
 * local data center, the default scope `datacenter`, or `zone` filtered to the agent's zone), a
 * peer's copy (`?dc=PEER` reads `name@PEER`), or, for scope `global`, the local service plus the
 * copy of every peer that exports it. A blocking read wakes on a change of any part; its index is
 * the highest of theirs. A part whose data center's link is down (or the agent offline) marks the
 * answer stale, as Consul marks a cached answer: `X-Consul-KnownLeader: false`, `X-Cache: HIT`, `Age`.
 */
import { remoteKey } from '../../proto/datacenter.js';
import { MeshregError } from '../../proto/errors.js';
import { SERVICE_NAME_PATTERN, type Instance } from '../../proto/instance.js';
import type { JsonAnswer, JsonRequest } from '../../proto/runtime/json-router.js';
import { parseBlocking, parseFlag } from '../http/blocking.js';
import type { WatchedService } from '../view/service-view.js';
import type { ConsulBackend, UpstreamStatus } from './consul-backend.js';
import { combineAge, resolveDatacenter } from './consul-datacenters.js';
import { catalogEntry, healthEntry, nodeMeta } from './consul-encode.js';
import { NO_FILTERS, parseReadFilters, type ReadFilters } from './consul-query.js';

/** One watched key a read is made of. */
interface Part {
  readonly key: string;
  readonly datacenter: string;
  readonly remote: boolean;
}

/** A part with its watch, held (never evicted) while the read is in progress. */
interface HeldPart extends Part {
  readonly entry: WatchedService;
  readonly release: () => void;
}

/**
 * Headers every read carries: the index, and whether what it shows is current. `staleAgeSec` set:
 * served from what was last known (the agent offline, or a peer's link down), that many seconds old.
 */
export function readHeaders(
  up: UpstreamStatus,
  index: number,
  staleAgeSec: number | undefined = up.connected ? undefined : up.offlineForSec,
): Record<string, string> {
  const h: Record<string, string> = {
    'x-consul-index': String(Math.max(1, index)),
    'x-consul-knownleader': String(staleAgeSec === undefined),
    'x-consul-lastcontact': String(up.lastContactMs),
  };
  if (staleAgeSec !== undefined) {
    // Consul's own way to say "served from a local cache while the servers are unreachable".
    h['x-cache'] = 'HIT';
    h['age'] = String(staleAgeSec);
  }
  return h;
}

/** Holds a blocking read until `current()` passes `index`, the wait elapses, or the client leaves. */
export async function block(
  viewIndex: number,
  current: () => number,
  changed: (timeoutMs: number) => Promise<void>,
  index: number | undefined,
  waitMs: number,
  signal: AbortSignal,
): Promise<void> {
  // An index from the future (the agent restarted since the client read it) answers at once, so the
  // client sees the index go backwards and resets, as Consul clients do.
  if (index === undefined || index === 0 || index > viewIndex) return;
  const deadline = performance.now() + waitMs;
  while (current() <= index && !signal.aborted) {
    const left = deadline - performance.now();
    if (left <= 0) return;
    await changed(left);
  }
}

function checkServiceName(name: string): void {
  if (name === '' || name.length > 256 || !SERVICE_NAME_PATTERN.test(name)) {
    throw new MeshregError('invalid_argument', `invalid service name: ${JSON.stringify(name)}`, {
      fields: [{ path: 'name', message: 'must be a service name' }],
    });
  }
}

/** The parts of a read of `name`, or Consul's 500 answer for an unknown `?dc=`. */
function resolveParts(b: ConsulBackend, name: string, f: ReadFilters): Part[] | JsonAnswer {
  const local: Part = { key: name, datacenter: b.datacenter, remote: false };
  if (f.scope === 'global') {
    const peers = b.datacenters?.federation.exporting(name) ?? [];
    return [local, ...peers.map((dc) => ({ key: remoteKey(name, dc), datacenter: dc, remote: true }))];
  }
  const r = resolveDatacenter(b.datacenters, b.datacenter, f.dc);
  if ('status' in r) return r;
  if (!r.remote) return [local];
  if (f.scope === 'zone')
    throw new MeshregError('invalid_argument', 'Cannot combine ?dc= of a peer with ?scope=zone', {
      fields: [{ path: 'scope', message: "scope zone reads the agent's own zone of the local data center" }],
    });
  return [{ key: remoteKey(name, r.datacenter), datacenter: r.datacenter, remote: true }];
}

/** Watches and holds every part not held yet (a throw leaves the held ones to the caller's release). */
function holdParts(b: ConsulBackend, parts: readonly Part[], held: Map<string, HeldPart>): HeldPart[] {
  const out: HeldPart[] = [];
  for (const p of parts) {
    let h = held.get(p.key);
    if (h === undefined) {
      const entry = b.view.ensure(p.key);
      h = { key: p.key, datacenter: p.datacenter, remote: p.remote, entry, release: b.view.hold(entry) };
      held.set(p.key, h);
    }
    out.push(h);
  }
  return out;
}

/** Throws the control plane's refusal of a part's watch (a limit: 429 and the watch goes; else 403). */
function checkRefusal(b: ConsulBackend, p: HeldPart): void {
  const refusal = b.subscriptionRefusal(p.key);
  if (refusal === undefined) return;
  if (refusal.code === 'limit_exceeded') {
    // A limit is not a policy decision: its own code (429), naming the limit. The watch goes, so
    // a later read asks again (and succeeds once the agent watches fewer services).
    p.release();
    b.view.unwatch(p.key);
    throw new MeshregError('limit_exceeded', `watching "${p.key}" was refused: ${refusal.message}`);
  }
  throw new MeshregError('forbidden', `watching "${p.key}" was refused: ${refusal.message}`);
}

/** Resolves when any part changes (or, for a global read, the data centers), the time passes, or on abort. */
function anyChange(
  b: ConsulBackend,
  parts: readonly HeldPart[],
  withDatacenters: boolean,
  ms: number,
  signal: AbortSignal,
): Promise<void> {
  const single = parts[0];
  if (parts.length === 1 && single !== undefined && !withDatacenters)
    return b.view.waitForChange(single.key, ms, signal);
  // The other waits end with the first: none is left pending until its own timeout.
  const done = new AbortController();
  const both = AbortSignal.any([signal, done.signal]);
  const waits = parts.map((p) => b.view.waitForChange(p.key, ms, both));
  if (withDatacenters && b.datacenters !== undefined) waits.push(b.datacenters.waitForChange(ms, both));
  return Promise.race(waits).finally(() => {
    done.abort();
  });
}

export async function serviceRead(
  b: ConsulBackend,
  req: JsonRequest,
  shape: 'health' | 'catalog',
): Promise<JsonAnswer> {
  const name = req.params['name'] ?? '';
  checkServiceName(name);
  const filters = parseReadFilters(req.query);
  if (filters.scope === 'zone' && b.node.zone === '')
    throw new MeshregError('invalid_argument', 'scope zone needs the agent to have a zone', {
      fields: [{ path: 'scope', message: 'this agent has no zone: MESHREG_ZONE is unset' }],
    });
  const passing = shape === 'health' && parseFlag(req.query, 'passing');
  const tags = req.query.getAll('tag');
  const blocking = parseBlocking(req.query);
  const resolved = resolveParts(b, name, filters);
  if (!Array.isArray(resolved)) return resolved;
  const global = filters.scope === 'global';
  const held = new Map<string, HeldPart>();
  let parts: HeldPart[];
  try {
    // While this read waits (first push, blocking query) its watches cannot be evicted.
    parts = holdParts(b, resolved, held);
    const first = firstPushes(b, parts, req.signal);
    if (first !== undefined) await first;
    for (const p of parts) checkRefusal(b, p);
    if (blocking.index !== undefined && blocking.index !== 0) {
      const current = (): number => readIndex(b, parts, global);
      const changed = (ms: number): Promise<void> => anyChange(b, parts, global, ms, req.signal);
      await block(b.view.index, current, changed, blocking.index, blocking.waitMs, req.signal);
    }
    // A peer may have started or stopped exporting the service while the read waited.
    if (global) {
      const now = resolveParts(b, name, filters);
      if (Array.isArray(now)) parts = holdParts(b, now, held);
    }
  } finally {
    for (const p of held.values()) p.release();
  }
  const up = b.upstream();
  let age = up.connected ? undefined : up.offlineForSec;
  for (const p of parts) if (p.remote) age = combineAge(age, b.datacenters?.staleAgeSec(p.datacenter));
  const index = readIndex(b, parts, global);
  const extra = filters.scope === undefined ? undefined : { 'x-meshreg-scope': filters.scope };
  const single = parts[0];
  if (parts.length === 1 && single !== undefined) {
    const cached = cachedBody(b, single, shape, { passing, tags, filters }, age, up);
    return {
      status: 200,
      text: cached.text,
      headers: extra === undefined ? cached.headers : { ...cached.headers, ...extra },
    };
  }
  const text = encode(b, parts, shape, { passing, tags, filters });
  const headers = { ...readHeaders(up, index, age), 'content-type': 'application/json', ...extra };
  return { status: 200, text, headers };
}

/** The index of a read: the highest of its parts' (and, for a global read, of the data centers'). */
function readIndex(b: ConsulBackend, parts: readonly HeldPart[], global: boolean): number {
  let index = global ? (b.datacenters?.modifyIndex ?? 0) : 0;
  for (const p of parts) if (p.entry.modifyIndex > index) index = p.entry.modifyIndex;
  return index;
}

/**
 * Waits (bounded, together) for the first push of every part that has none yet, while it can come;
 * undefined (nothing to wait for, the common case) so the read goes on without a turn of the loop.
 */
function firstPushes(
  b: ConsulBackend,
  parts: readonly HeldPart[],
  signal: AbortSignal,
): Promise<unknown> | undefined {
  const waiting = (p: HeldPart): boolean =>
    !p.entry.received && (!p.remote || b.datacenters?.staleAgeSec(p.datacenter) === undefined);
  if (!parts.some(waiting) || !b.upstream().connected) return undefined;
  return Promise.all(
    parts.filter(waiting).map((p) => b.view.waitForChange(p.key, b.firstReadWaitMs, signal)),
  );
}

interface ListOptions {
  readonly passing: boolean;
  readonly tags: readonly string[];
  readonly filters: ReadFilters;
}

/** The instances of the parts that pass the filters, in answer order, each with its data center. */
function select(
  b: ConsulBackend,
  parts: readonly HeldPart[],
  o: ListOptions,
): { i: Instance; p: HeldPart }[] {
  const own = b.node;
  const { filters } = o;
  const out: { i: Instance; p: HeldPart; rank: number }[] = [];
  for (const p of parts) {
    let list = b.view.instances(p.key);
    if (o.tags.length > 0) list = list.filter((i) => o.tags.every((t) => i.tags.includes(t)));
    if (o.passing) list = list.filter((i) => i.checks.every((c) => c.status === 'passing'));
    if (filters.scope === 'zone') list = list.filter((i) => i.zone === own.zone);
    if (filters.nodeMeta.length > 0) {
      list = list.filter((i) => {
        const meta = nodeMeta(i);
        return filters.nodeMeta.every(([k, v]) => Object.hasOwn(meta, k) && meta[k] === v);
      });
    }
    list.sort((x, y) => (x.node === y.node ? x.id.localeCompare(y.id) : x.node.localeCompare(y.node)));
    for (const i of list) out.push({ i, p, rank: filters.near ? nearRank(own, i, p.remote) : 0 });
  }
  // Array.prototype.sort is stable: within a rank the order above stays.
  if (filters.near) out.sort((x, y) => x.rank - y.rank);
  return out;
}

/** `?near=_agent` without coordinates: this node, then its zone, then the rest of its data center, then peers. */
function nearRank(own: ConsulBackend['node'], i: Instance, remote: boolean): number {
  if (remote) return 3;
  if (i.nodeId === own.nodeId) return 0;
  if (own.zone !== '' && i.zone === own.zone && i.region === own.region) return 1;
  return 2;
}

function encode(
  b: ConsulBackend,
  parts: readonly HeldPart[],
  shape: 'health' | 'catalog',
  o: ListOptions,
): string {
  return JSON.stringify(
    select(b, parts, o).map(({ i, p }) =>
      shape === 'health'
        ? healthEntry(i, p.datacenter, p.entry.modifyIndex)
        : catalogEntry(i, p.datacenter, p.entry.modifyIndex),
    ),
  );
}

/** Encoded read bodies per watched key, valid for one index. */
const bodies = new WeakMap<
  WatchedService,
  { index: number; texts: Map<string, string>; headers: Record<string, string> | undefined }
>();

/**
 * A one-part read's body and headers. A body only changes with its key's index: it is encoded once
 * per index and filter set, not per read, so a thousand blocking queries woken by one change share
 * one encoding. Fresh headers depend on the index only; stale ones carry an age, so are not kept.
 */
function cachedBody(
  b: ConsulBackend,
  p: HeldPart,
  shape: 'health' | 'catalog',
  o: ListOptions,
  age: number | undefined,
  up: UpstreamStatus,
): { text: string; headers: Record<string, string> } {
  const index = p.entry.modifyIndex;
  const f = o.filters;
  const filtered =
    f === NO_FILTERS
      ? ''
      : `|${f.scope ?? ''}|${String(f.near)}|${f.nodeMeta.map(([k, v]) => `${k}:${v}`).join('\u0000')}`;
  const cacheKey = `${shape}|${String(o.passing)}|${o.tags.join('\u0000')}${filtered}`;
  let cache = bodies.get(p.entry);
  if (cache === undefined || cache.index !== index) {
    cache = { index, texts: new Map(), headers: undefined };
    bodies.set(p.entry, cache);
  }
  const headers =
    age === undefined
      ? (cache.headers ??= { ...readHeaders(up, index, age), 'content-type': 'application/json' })
      : { ...readHeaders(up, index, age), 'content-type': 'application/json' };
  let text = cache.texts.get(cacheKey);
  if (text === undefined) {
    text = encode(b, [p], shape, o);
    // A few filter combinations per service are normal; a client cycling through tags must not grow it forever.
    if (cache.texts.size < 32) cache.texts.set(cacheKey, text);
  }
  return { text, headers };
}

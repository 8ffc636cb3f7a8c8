/**
 * The frames a session server sends to an agent, and their decoder. The protocol as a whole is
 * described in `agent-link.ts`, which re-exports this file.
 */
import { readBatch } from './agent-frames.js';
import { readDatacenter, WATCH_KEY_RULES } from './datacenter.js';
import { readInstance, SERVICE_NAME_PATTERN, type Instance } from './instance.js';
import {
  Issues,
  decodeObject,
  at,
  isRecord,
  readArray,
  readBool,
  readInt,
  readObject,
  readString,
  type Decoded,
} from './validate.js';

export interface Welcome {
  readonly type: 'welcome';
  readonly protocolVersion: number;
  readonly sessionId: string;
  /** Session servers the agent may fail over to (WebSocket URLs). */
  readonly sessions: readonly string[];
  readonly pingIntervalMs: number;
}

export interface ConfirmResult {
  readonly op: 'publish' | 'unpublish';
  readonly id: string;
  readonly version: number;
  /** Present when the session refused the change (e.g. a blacklisted name). */
  readonly error?: { readonly code: string; readonly message: string };
}

export interface Confirm {
  readonly type: 'confirm';
  readonly results: readonly ConfirmResult[];
}

export interface Push {
  readonly type: 'push';
  readonly service: string;
  /** Datum version; only grows. The agent ignores a push at or below the version it holds. */
  readonly version: number;
  /**
   * False while the data layer is still rebuilding this service after a failure: the list may be
   * missing instances, so the agent adds to what it holds instead of replacing it (push-empty protection).
   */
  readonly complete: boolean;
  readonly instances: readonly Instance[];
}

/**
 * Protocol 2: the changes of `service` from datum version `base` to `version`. The agent applies it
 * only when it holds exactly `base` (otherwise it asks again with the version it holds); the result
 * is its list at `base` without `removed` and with `upserts` put in. When `complete` is false it adds
 * and updates but removes nothing, like an incomplete {@link Push}.
 */
export interface Delta {
  readonly type: 'delta';
  readonly service: string;
  readonly base: number;
  readonly version: number;
  readonly complete: boolean;
  /** Instances added or changed since `base`. */
  readonly upserts: readonly Instance[];
  /** Registration IDs (`nodeId/id`) removed since `base`. */
  readonly removed: readonly string[];
}

export interface Catalog {
  readonly type: 'catalog';
  readonly version: number;
  readonly complete: boolean;
  /** Service name → union of its instances' tags. */
  readonly services: Readonly<Record<string, readonly string[]>>;
}

export interface Pong {
  readonly type: 'pong';
  readonly sentAt: number;
}

/** A subscription the session refused (e.g. a blacklisted name); nothing will be pushed for it. */
export interface Refused {
  readonly type: 'refused';
  readonly service: string;
  readonly error: { readonly code: string; readonly message: string };
}

/** Longest `retryAfterMs` an agent honours; a larger value in a frame is clamped to it. */
export const MAX_SLOW_DOWN_MS = 60_000;

/**
 * Protocol 3: the session is overloaded (its event loop lags or its queues grew). The agent defers
 * its non-urgent sends (registration batches, re-sends) for about `retryAfterMs`, keeps the link,
 * and extends its liveness timeout by as much. `retryAfterMs` is at most {@link MAX_SLOW_DOWN_MS}
 * once decoded, whatever the session sent.
 */
export interface SlowDown {
  readonly type: 'slow_down';
  readonly retryAfterMs: number;
  /** Why, for logs: e.g. `loop lag 812 ms`. */
  readonly reason: string;
}

/** A federated data center as the session sees it (see {@link Datacenters}). */
export interface PeerDatacenter {
  readonly name: string;
  /** The session's link to it is up: its copies are current. False: they are its last known (stale). */
  readonly linked: boolean;
  /**
   * Milliseconds since the session last synced with it, when this frame was sent (-1: never). The
   * agent subtracts it from the frame's arrival time: no clock is compared across hosts.
   */
  readonly ageMs: number;
  /** The services it exports to this data center (the names an agent may watch as `name@dc`). */
  readonly services: readonly string[];
}

/**
 * The data centers the session knows: its own, and the federated peers with their link state and
 * exports. Sent after the welcome and again whenever any of it changes (a link up or down, an
 * export added or removed). Absent from older sessions: the agent then knows only its own.
 */
export interface Datacenters {
  readonly type: 'datacenters';
  readonly local: string;
  readonly peers: readonly PeerDatacenter[];
}

/** Most peers one {@link Datacenters} frame may list, and most services per peer. */
export const MAX_PEERS = 64;
export const MAX_PEER_SERVICES = 10_000;

export type SessionFrame =
  Welcome | Confirm | Push | Delta | Catalog | Pong | Refused | SlowDown | Datacenters;

// ---- decoding -----------------------------------------------------------------------------------

/** Parses and validates a frame from a session server. */
export function decodeSessionFrame(raw: unknown): Decoded<SessionFrame> {
  return decodeObject(raw, readSessionFrame);
}

function readSessionFrame(issues: Issues, o: Record<string, unknown>): SessionFrame | undefined {
  switch (o['type']) {
    case 'welcome':
      return readWelcome(issues, o);
    case 'confirm': {
      const results = readBatch(issues, o['results'], 'results', (ro, p): ConfirmResult | undefined => {
        const op =
          ro['op'] === 'publish' || ro['op'] === 'unpublish'
            ? ro['op']
            : issues.add(at(p, 'op'), 'must be publish or unpublish');
        const id = readString(issues, ro['id'], at(p, 'id'), { required: true, maxLength: 256 });
        const version = readInt(issues, ro['version'], at(p, 'version'), { required: true });
        const error = isRecord(ro['error']) ? readError(issues, ro['error'], at(p, 'error')) : undefined;
        if (op === undefined || id === undefined || version === undefined) return undefined;
        return error === undefined ? { op, id, version } : { op, id, version, error };
      });
      return results && { type: 'confirm', results };
    }
    case 'push':
      return readPush(issues, o);
    case 'delta':
      return readDelta(issues, o);
    case 'catalog':
      return readCatalog(issues, o);
    case 'pong': {
      const sentAt = readInt(issues, o['sentAt'], 'sentAt', { required: true });
      return sentAt === undefined ? undefined : { type: 'pong', sentAt };
    }
    case 'refused': {
      const service = readString(issues, o['service'], 'service', WATCH_KEY_RULES);
      const error = readError(issues, o['error'], 'error');
      if (service === undefined || error === undefined) return undefined;
      return { type: 'refused', service, error };
    }
    case 'slow_down':
      return readSlowDown(issues, o);
    case 'datacenters':
      return readDatacenters(issues, o);
    default:
      return issues.add(
        'type',
        'must be one of welcome, confirm, push, delta, catalog, pong, refused, slow_down, datacenters',
      );
  }
}

/** An error body `{code, message}` (a refused change or subscription). */
function readError(
  issues: Issues,
  raw: unknown,
  path: string,
): { readonly code: string; readonly message: string } | undefined {
  const eo = readObject(issues, raw, path);
  const code = readString(issues, eo?.['code'], at(path, 'code'), { required: true, maxLength: 64 });
  const message = readString(issues, eo?.['message'], at(path, 'message'), { maxLength: 1024 }) ?? '';
  return code === undefined ? undefined : { code, message };
}

function readWelcome(issues: Issues, o: Record<string, unknown>): Welcome | undefined {
  const protocolVersion = readInt(issues, o['protocolVersion'], 'protocolVersion', {
    required: true,
    min: 1,
  });
  const sessionId = readString(issues, o['sessionId'], 'sessionId', { required: true, maxLength: 256 });
  const sessions =
    readArray(
      issues,
      o['sessions'],
      'sessions',
      (s, p) => readString(issues, s, p, { required: true, maxLength: 512 }),
      { maxItems: 256 },
    ) ?? [];
  const pingIntervalMs = readInt(issues, o['pingIntervalMs'], 'pingIntervalMs', { required: true, min: 10 });
  if (protocolVersion === undefined || sessionId === undefined || pingIntervalMs === undefined) {
    return undefined;
  }
  return { type: 'welcome', protocolVersion, sessionId, sessions, pingIntervalMs };
}

function readSlowDown(issues: Issues, o: Record<string, unknown>): SlowDown | undefined {
  // Clamped, not refused: a session asking for too long a pause is still asking to slow down.
  const asked = readInt(issues, o['retryAfterMs'], 'retryAfterMs', { required: true, min: 0 });
  const reason = readString(issues, o['reason'], 'reason', { maxLength: 256 }) ?? '';
  if (asked === undefined) return undefined;
  return { type: 'slow_down', retryAfterMs: Math.min(asked, MAX_SLOW_DOWN_MS), reason };
}

function readDatacenters(issues: Issues, o: Record<string, unknown>): Datacenters | undefined {
  const local = readDatacenter(issues, o['local'], 'local', true);
  const peers = readArray(
    issues,
    o['peers'],
    'peers',
    (raw, p): PeerDatacenter | undefined => {
      const po = readObject(issues, raw, p);
      if (po === undefined) return undefined;
      const name = readDatacenter(issues, po['name'], at(p, 'name'), true);
      const linked = readBool(issues, po['linked'], at(p, 'linked'), true);
      const ageMs = readInt(issues, po['ageMs'], at(p, 'ageMs'), { required: true, min: -1 });
      const services = readArray(
        issues,
        po['services'],
        at(p, 'services'),
        (x, xp) =>
          readString(issues, x, xp, { ...WATCH_KEY_RULES, maxLength: 256, pattern: SERVICE_NAME_PATTERN }),
        { required: true, maxItems: MAX_PEER_SERVICES },
      );
      if (name === undefined || linked === undefined || ageMs === undefined || services === undefined)
        return undefined;
      return { name, linked, ageMs, services };
    },
    { required: true, maxItems: MAX_PEERS },
  );
  if (local === undefined || peers === undefined) return undefined;
  return { type: 'datacenters', local, peers };
}

/** Most instances (or removed IDs) one push or delta may carry. */
export const MAX_PUSH_INSTANCES = 1_000_000;

const readInstances = (issues: Issues, raw: unknown, path: string): Instance[] | undefined =>
  readArray(issues, raw, path, (i, p) => readInstance(issues, i, p), {
    required: true,
    maxItems: MAX_PUSH_INSTANCES,
  });

function readPush(issues: Issues, o: Record<string, unknown>): Push | undefined {
  const service = readString(issues, o['service'], 'service', WATCH_KEY_RULES);
  const version = readInt(issues, o['version'], 'version', { required: true });
  const complete = readBool(issues, o['complete'], 'complete', true);
  const instances = readInstances(issues, o['instances'], 'instances');
  if (service === undefined || version === undefined || complete === undefined || instances === undefined) {
    return undefined;
  }
  return { type: 'push', service, version, complete, instances };
}

function readDelta(issues: Issues, o: Record<string, unknown>): Delta | undefined {
  const service = readString(issues, o['service'], 'service', WATCH_KEY_RULES);
  const base = readInt(issues, o['base'], 'base', { required: true, min: 1 });
  const version = readInt(issues, o['version'], 'version', { required: true, min: 1 });
  const complete = readBool(issues, o['complete'], 'complete', true);
  const upserts = readInstances(issues, o['upserts'], 'upserts');
  const removed = readArray(
    issues,
    o['removed'],
    'removed',
    (r, p) => readString(issues, r, p, { required: true, maxLength: 512 }),
    { required: true, maxItems: MAX_PUSH_INSTANCES },
  );
  if (base !== undefined && version !== undefined && version <= base) {
    issues.add('version', 'must be greater than base');
    return undefined;
  }
  if (
    service === undefined ||
    base === undefined ||
    version === undefined ||
    complete === undefined ||
    upserts === undefined ||
    removed === undefined
  ) {
    return undefined;
  }
  return { type: 'delta', service, base, version, complete, upserts, removed };
}

function readCatalog(issues: Issues, o: Record<string, unknown>): Catalog | undefined {
  const version = readInt(issues, o['version'], 'version', { required: true });
  const complete = readBool(issues, o['complete'], 'complete', true);
  const services = readCatalogServices(issues, o['services'], 'services');
  if (version === undefined || complete === undefined) return undefined;
  return { type: 'catalog', version, complete, services };
}

/**
 * The catalog's map of service name → tags (at most 4096 tags of 256 characters each); missing or
 * malformed entries are reported and left out.
 */
export function readCatalogServices(issues: Issues, raw: unknown, path: string): Record<string, string[]> {
  const services: Record<string, string[]> = {};
  for (const [name, tags] of Object.entries(readObject(issues, raw, path) ?? {})) {
    const list = readArray(
      issues,
      tags,
      at(path, name),
      (t, p) => readString(issues, t, p, { maxLength: 256 }),
      {
        maxItems: 4096,
      },
    );
    if (list !== undefined) services[name] = list;
  }
  return services;
}

/**
 * What meta asks its members for the console, over the meta link they already hold (meta → member
 * calls; members serve them): a session's agents, push latency and subscribers, a data server's
 * services and datums, and each member's recent errors and protection state. Every answer is decoded
 * here, by a shape that names each field, so a bad answer is reported with the path at fault.
 */
import type {
  ConsoleAgent,
  ConsoleAgentPage,
  ConsoleAudit,
  ConsoleDrained,
  ConsoleOverview,
  ConsoleServiceDetail,
  ConsoleServicePage,
  ConsoleError,
  ConsoleLatencyWindow,
  ConsoleOfflineAgent,
  ConsoleProtection,
  ConsoleServiceRow,
  ConsoleSubscriber,
} from './console.js';
import { readInstance, SERVICE_NAME_PATTERN, type Instance } from './instance.js';
import { decodeNoParams, pagedMethod, rpcEvent, rpcMethod, type Decoder, type NoParams } from './rpc.js';
import { Issues, at, decodeField, readArray, readBool } from './validate.js';
import { readInt, readObject, readOneOf, readString, readStringMap } from './validate.js';

/** A field's kind in a {@link Shape}. */
type Kind =
  | 'string'
  | 'int'
  | 'bool'
  | 'strings'
  | 'ints'
  | 'intOrNull'
  | 'stringMap'
  | 'instances'
  | readonly string[]
  | Shape
  | readonly [Shape];

/** The fields of an object and their kinds. */
export interface Shape {
  readonly [field: string]: Kind;
}

const MAX_ITEMS = 1_000_000;
const TEXT = { minLength: 0, maxLength: 65_536 } as const;

function readKind(issues: Issues, raw: unknown, path: string, kind: Kind): unknown {
  if (typeof kind === 'string') return readScalar(issues, raw, path, kind);
  if (isOneOf(kind)) return readOneOf(issues, raw, path, kind, true);
  if (isList(kind)) {
    const item = kind[0];
    return readArray(issues, raw, path, (x, p) => readShape(issues, x, p, item), {
      required: true,
      maxItems: MAX_ITEMS,
    });
  }
  return readShape(issues, raw, path, kind);
}

function isOneOf(kind: Kind): kind is readonly string[] {
  return Array.isArray(kind) && kind.every((k) => typeof k === 'string');
}

function isList(kind: Kind): kind is readonly [Shape] {
  return Array.isArray(kind) && kind.length === 1 && typeof kind[0] === 'object';
}

function readScalar(issues: Issues, raw: unknown, path: string, kind: string): unknown {
  switch (kind) {
    case 'string':
      return readString(issues, raw, path, { ...TEXT, required: true });
    case 'int':
      return readInt(issues, raw, path, { required: true, min: -Number.MAX_SAFE_INTEGER });
    case 'intOrNull':
      return raw === null ? null : readInt(issues, raw, path, { required: true });
    case 'bool':
      return readBool(issues, raw, path, true);
    case 'strings':
      return readArray(issues, raw, path, (x, p) => readString(issues, x, p, { ...TEXT, required: true }), {
        required: true,
        maxItems: MAX_ITEMS,
      });
    case 'ints':
      return readArray(issues, raw, path, (x, p) => readInt(issues, x, p, { required: true }), {
        required: true,
        maxItems: MAX_ITEMS,
      });
    case 'stringMap':
      return readStringMap(issues, raw, path, { maxEntries: 1024, maxValueLength: 65_536 });
    case 'instances':
      return readArray(issues, raw, path, (x, p) => readInstance(issues, x, p), {
        required: true,
        maxItems: MAX_ITEMS,
      });
    default:
      return issues.add(path, `unknown kind ${kind}`);
  }
}

/** Reads an object of `shape`: every field checked, unknown ones dropped. */
function readShape(issues: Issues, raw: unknown, path: string, shape: Shape): unknown {
  const o = readObject(issues, raw, path);
  if (o === undefined) return undefined;
  const before = issues.list.length;
  const out: Record<string, unknown> = {};
  for (const [field, kind] of Object.entries(shape))
    out[field] = readKind(issues, o[field], at(path, field), kind);
  return issues.list.length === before ? out : undefined;
}

/**
 * The decoder of a `T` described by `shape`. The shape is written next to `T`'s use below; the
 * decoder checks every field it names.
 */
export function shapeDecoder<T>(shape: Shape): Decoder<T> {
  return (raw) => {
    const issues = new Issues();
    return issues.result(readShape(issues, raw, '', shape) as T | undefined);
  };
}

const ROLE = ['meta', 'data', 'session'] as const;
const HEALTH = ['passing', 'warning', 'critical'] as const;

const ERROR_SHAPE: Shape = { at: 'int', role: ROLE, member: 'string', message: 'string', code: 'string' };
const PROTECTION_SHAPE: Shape = { role: ROLE, id: 'string', active: 'bool', held: 'int' };
const LATENCY_SHAPE: Shape = { at: 'int', windowMs: 'int', count: 'int', p50Ms: 'int', p99Ms: 'int' };
const OFFLINE_SHAPE: Shape = {
  node: 'string',
  nodeId: 'string',
  session: 'string',
  why: ['grace', 'protection'],
  since: 'int',
};

const MEMBER_SHAPE: Shape = {
  id: 'string',
  role: ROLE,
  address: 'string',
  up: 'bool',
  leaseLeftMs: 'int',
  draining: 'bool',
  reachable: 'bool',
};
const SERVICE_ROW_SHAPE: Shape = {
  name: 'string',
  instances: 'int',
  passing: 'int',
  warning: 'int',
  critical: 'int',
  draining: 'int',
  zones: 'strings',
  tags: 'strings',
};
const AGENT_SHAPE: Shape = {
  node: 'string',
  nodeId: 'string',
  zone: 'string',
  session: 'string',
  address: 'string',
  connectedSince: 'int',
  lastContact: 'int',
  cacheAgeMs: 'intOrNull',
  offline: 'bool',
  registrations: 'int',
  subscriptions: 'int',
};
const CHECK_SHAPE: Shape = { id: 'string', name: 'string', status: HEALTH, output: 'string', type: 'string' };

/** What a session reports for the overview. */
export interface SessionConsoleSummary {
  readonly sessionId: string;
  readonly connected: number;
  readonly offline: number;
  /** At most 200. */
  readonly offlineAgents: readonly ConsoleOfflineAgent[];
  /** Grows whenever an agent connects, leaves, publishes or subscribes: the console's change signal. */
  readonly agentsVersion: number;
  readonly latency: readonly ConsoleLatencyWindow[];
  readonly errors: readonly ConsoleError[];
  readonly protection: ConsoleProtection;
}

/** What a data server reports for the overview. */
export interface DataConsoleSummary {
  readonly dataId: string;
  /** Slots it leads and is still taking over. */
  readonly migrating: readonly number[];
  /** Changes whenever a datum of a slot it leads does: the console's change signal. */
  readonly servicesVersion: string;
  readonly errors: readonly ConsoleError[];
  readonly protection: ConsoleProtection;
}

/** A datum as its slot leader holds it. */
export interface ConsoleDatum {
  readonly version: number;
  readonly instances: readonly Instance[];
}

/** Params of the per-service calls. */
export interface ConsoleServiceParams {
  readonly service: string;
}

const decodeServiceParams: Decoder<ConsoleServiceParams> = decodeField('service', (issues, raw, path) =>
  readString(issues, raw, path, {
    required: true,
    maxLength: 256,
    pattern: SERVICE_NAME_PATTERN,
    patternHint: 'must be a service name',
  }),
);

/** The drained nodes and instances meta holds, as it sends them to data servers. */
export interface DrainedEvent extends ConsoleDrained {
  /** Grows with every change; an older state is ignored. */
  readonly version: number;
}

/** The console's calls on the meta link (meta calls them on its members). */
export const CONSOLE_LINK = Object.freeze({
  sessionSummary: rpcMethod<NoParams, SessionConsoleSummary>(
    'console.sessionSummary',
    decodeNoParams,
    shapeDecoder({
      sessionId: 'string',
      connected: 'int',
      offline: 'int',
      offlineAgents: [OFFLINE_SHAPE],
      agentsVersion: 'int',
      latency: [LATENCY_SHAPE],
      errors: [ERROR_SHAPE],
      protection: PROTECTION_SHAPE,
    }),
  ),
  /** Every agent of a session, connected or held offline. */
  agents: pagedMethod<NoParams, ConsoleAgent>('console.agents', decodeNoParams, shapeDecoder(AGENT_SHAPE)),
  /** A session's subscribers of one service. */
  subscribers: rpcMethod<ConsoleServiceParams, { readonly subscribers: readonly ConsoleSubscriber[] }>(
    'console.subscribers',
    decodeServiceParams,
    shapeDecoder({
      subscribers: [
        { node: 'string', nodeId: 'string', session: 'string', ackedVersion: 'int', sentVersion: 'int' },
      ],
    }),
  ),
  dataSummary: rpcMethod<NoParams, DataConsoleSummary>(
    'console.dataSummary',
    decodeNoParams,
    shapeDecoder({
      dataId: 'string',
      migrating: 'ints',
      servicesVersion: 'string',
      errors: [ERROR_SHAPE],
      protection: PROTECTION_SHAPE,
    }),
  ),
  /** A data server's services, in the slots it leads. */
  services: pagedMethod<NoParams, ConsoleServiceRow>(
    'console.services',
    decodeNoParams,
    shapeDecoder(SERVICE_ROW_SHAPE),
  ),
  /** A service's datum at its slot leader. */
  datum: rpcMethod<ConsoleServiceParams, ConsoleDatum>(
    'console.datum',
    decodeServiceParams,
    shapeDecoder({ version: 'int', instances: 'instances' }),
  ),
  /** Meta → data servers: the drained nodes and instances (their datums show them draining). */
  drained: rpcEvent<DrainedEvent>(
    'console.drained',
    shapeDecoder({ version: 'int', nodes: 'strings', instances: 'strings' }),
  ),
});

/** Health states, for the services filter. */
export const CONSOLE_HEALTH = HEALTH;

/** Decoders of the console's HTTP answers (what `meshreg ctl` reads). */
export const CONSOLE_ANSWERS = Object.freeze({
  overview: shapeDecoder<ConsoleOverview>({
    version: 'string',
    generatedAt: 'int',
    you: { name: 'string', access: ['read', 'write'] },
    members: [MEMBER_SHAPE],
    leader: { self: 'bool', id: 'string', fencingRevision: 'string', store: 'string', storeHealthy: 'bool' },
    slots: {
      slotCount: 'int',
      epoch: 'int',
      servers: [{ id: 'string', led: 'int', followed: 'int' }],
      migrating: 'ints',
    },
    push: { stopped: 'bool', allow: 'strings' },
    clientOff: 'strings',
    publishBlacklist: 'strings',
    subscribeBlacklist: 'strings',
    drained: { nodes: 'strings', instances: 'strings' },
    agents: { connected: 'int', offline: 'int', offlineAgents: [OFFLINE_SHAPE] },
    pushLatency: [LATENCY_SHAPE],
    protection: [PROTECTION_SHAPE],
    errors: [ERROR_SHAPE],
  }),
  services: shapeDecoder<ConsoleServicePage>({
    total: 'int',
    offset: 'int',
    limit: 'int',
    services: [SERVICE_ROW_SHAPE],
    unreachable: 'strings',
  }),
  service: shapeDecoder<ConsoleServiceDetail>({
    name: 'string',
    version: 'int',
    slot: 'int',
    leader: 'string',
    instances: [
      {
        id: 'string',
        node: 'string',
        nodeId: 'string',
        zone: 'string',
        region: 'string',
        address: 'string',
        port: 'int',
        weights: { passing: 'int', warning: 'int' },
        metadata: 'stringMap',
        tags: 'strings',
        health: HEALTH,
        checks: [CHECK_SHAPE],
        draining: 'bool',
        drainedBy: ['', 'node', 'instance'],
      },
    ],
    subscribers: [
      { node: 'string', nodeId: 'string', session: 'string', ackedVersion: 'int', sentVersion: 'int' },
    ],
    deregister: 'bool',
    deregisterNote: 'string',
    unreachable: 'strings',
  }),
  agents: shapeDecoder<ConsoleAgentPage>({
    total: 'int',
    offset: 'int',
    limit: 'int',
    agents: [AGENT_SHAPE],
    unreachable: 'strings',
  }),
  audit: shapeDecoder<ConsoleAudit>({
    records: [
      { at: 'int', who: 'string', action: 'string', target: 'string', reason: 'string', result: 'string' },
    ],
    total: 'int',
    persistence: ['memory', 'store'],
  }),
  drained: shapeDecoder<ConsoleDrained>({ nodes: 'strings', instances: 'strings' }),
});

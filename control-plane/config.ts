/**
 * Control-plane configuration, read once from `MESHREG_*` environment variables into a frozen object.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import envVar from 'env-var';
import { MAX_SETTING_MS, MIB, boundedInt } from '../proto/runtime/env-bounds.js';
import { LOG_LEVELS, type LogLevel } from '../proto/runtime/log.js';
import { isPowerOfTwo } from '../proto/slot-table.js';

export type Role = 'meta' | 'data' | 'session';
export const ROLES: readonly Role[] = ['meta', 'data', 'session'];

export interface ControlPlaneConfig {
  readonly logLevel: LogLevel;
  readonly admin: {
    /** Bearer token of the admin API; '' turns it off. */
    readonly token: string;
    /** Accept admin requests from non-loopback clients. */
    readonly remote: boolean;
  };
  readonly roles: readonly Role[];
  readonly token: string;
  readonly clusterToken: string;
  readonly link: {
    readonly callTimeoutMs: number;
    readonly maxFrameBytes: number;
    readonly heartbeatMs: number;
    /** Largest frame accepted on a server link before its hello is accepted. */
    readonly maxHelloBytes: number;
    /** Time a server gives a peer that connected to one of its links to say an accepted hello. */
    readonly helloTimeoutMs: number;
    /** Reconnect delays of every outgoing server link: the first after a failure, and the cap. */
    readonly retry: { readonly initialMs: number; readonly maxMs: number };
  };
  readonly session: {
    readonly id: string;
    readonly host: string;
    readonly port: number;
    readonly advertiseUrl: string;
    readonly maxFrameBytes: number;
    /** Largest frame accepted from an agent before its hello is accepted. */
    readonly maxHelloBytes: number;
    readonly helloTimeoutMs: number;
    readonly pingIntervalMs: number;
    readonly idleTimeoutMs: number;
    readonly maxFramesPerSec: number;
    readonly frameBurst: number;
    readonly clientGraceMs: number;
    readonly pushCoalesceMs: number;
    readonly pushAckTimeoutMs: number;
    readonly pushMaxRetries: number;
    readonly reconcileIntervalMs: number;
    /** Most subscriptions one agent connection may hold on a session. */
    readonly maxSubscriptionsPerAgent: number;
  };
  readonly data: {
    readonly id: string;
    readonly host: string;
    readonly port: number;
    readonly advertiseHost: string;
    readonly warmupMs: number;
    readonly catalogDebounceMs: number;
    readonly sessionGraceMs: number;
    readonly migrationTimeoutMs: number;
  };
  readonly meta: {
    readonly host: string;
    readonly port: number;
    readonly url: string;
    /** Meta URLs members connect to (in turn, failing over); from MESHREG_META_URL. */
    readonly urls: readonly string[];
    readonly store: 'embedded' | 'etcd';
    readonly etcdEndpoints: readonly string[];
    readonly etcdPrefix: string;
    readonly etcdLeaseTtlS: number;
    readonly leaseMs: number;
    readonly warmupMs: number;
    readonly arrangeIntervalMs: number;
    readonly slotCount: number;
    readonly slotFollowers: number;
    readonly maxLeaderMoves: number;
  };
}

/** One documented variable: the README's table is generated from the same list. */
export interface VarDoc {
  readonly name: string;
  readonly default: string;
  readonly doc: string;
}

export const CONTROL_PLANE_VARS: readonly VarDoc[] = [
  {
    name: 'MESHREG_TOKEN',
    default: '(dev: generated)',
    doc: 'Shared secret agents present in their hello; required by `meshreg server`.',
  },
  { name: 'MESHREG_LOG_LEVEL', default: 'info', doc: 'debug, info, warn or error.' },
  {
    name: 'MESHREG_ADMIN_TOKEN',
    default: '(none: admin API off)',
    doc: 'Bearer token of the admin API (/admin/... on every role port) and of `meshreg ctl`.',
  },
  {
    name: 'MESHREG_ADMIN_REMOTE',
    default: 'false',
    doc: 'Accept admin requests from non-loopback clients (they are refused with 403 otherwise).',
  },
  {
    name: 'MESHREG_ROLES',
    default: 'meta,data,session',
    doc: '`meshreg server`: the roles this process runs, comma-separated.',
  },
  {
    name: 'MESHREG_CLUSTER_TOKEN',
    default: '(MESHREG_TOKEN)',
    doc: 'Shared secret of the links between servers.',
  },
  { name: 'MESHREG_META_HOST', default: '127.0.0.1', doc: 'Address the meta role binds.' },
  { name: 'MESHREG_META_PORT', default: '9610', doc: 'Port of the meta role (meta link and /health).' },
  {
    name: 'MESHREG_META_URL',
    default: 'ws://127.0.0.1:9610/v1/meta-link',
    doc: 'Where data and session roles find meta (ignored when meta runs in the same process).',
  },
  {
    name: 'MESHREG_META_STORE',
    default: 'embedded',
    doc: 'Where meta keeps members, the slot table and leadership: embedded (one meta) or etcd.',
  },
  {
    name: 'MESHREG_ETCD_ENDPOINTS',
    default: '(none)',
    doc: 'etcd client URLs, comma-separated (with MESHREG_META_STORE=etcd).',
  },
  { name: 'MESHREG_ETCD_PREFIX', default: '/meshreg/', doc: 'Key prefix of this cluster in etcd.' },
  {
    name: 'MESHREG_ETCD_LEASE_TTL_S',
    default: '5',
    doc: 'TTL of the etcd leases behind meta leadership and membership.',
  },
  { name: 'MESHREG_META_LEASE_MS', default: '5000', doc: 'A member not heard from this long is removed.' },
  {
    name: 'MESHREG_META_WARMUP_MS',
    default: '1000',
    doc: 'After meta starts, members get this long to join before slots are assigned.',
  },
  {
    name: 'MESHREG_META_ARRANGE_INTERVAL_MS',
    default: '1000',
    doc: 'Period of the slot arrangement rounds.',
  },
  {
    name: 'MESHREG_HEARTBEAT_MS',
    default: '1000',
    doc: 'Heartbeat period of data and session servers to meta.',
  },
  { name: 'MESHREG_LINK_CALL_TIMEOUT_MS', default: '5000', doc: 'Timeout of one call between servers.' },
  {
    name: 'MESHREG_LINK_MAX_FRAME_BYTES',
    default: '67108864',
    doc: 'Largest frame between servers once the hello is accepted (1 KiB..1 GiB); slot snapshots and migrations are paged to half of it. Every server of a cluster must use the same value.',
  },
  { name: 'MESHREG_DATA_HOST', default: '127.0.0.1', doc: 'Address the data role binds.' },
  { name: 'MESHREG_DATA_PORT', default: '9620', doc: 'Port of the data role (data link and /health).' },
  {
    name: 'MESHREG_DATA_ADVERTISE_HOST',
    default: '(bound address)',
    doc: 'Host other servers use to reach this data server.',
  },
  {
    name: 'MESHREG_DATA_SESSION_GRACE_MS',
    default: '10000',
    doc: 'A session gone this long has its publishers dropped by data servers.',
  },
  {
    name: 'MESHREG_DATA_MIGRATION_TIMEOUT_MS',
    default: '10000',
    doc: 'Longest wait for sessions when a data server takes over slots.',
  },
  { name: 'MESHREG_SESSION_ID', default: 'session-<host>-<pid>', doc: 'Name of this session server.' },
  { name: 'MESHREG_DATA_ID', default: 'data-<host>-<pid>', doc: 'Name of this data server.' },
  {
    name: 'MESHREG_CATALOG_DEBOUNCE_MS',
    default: '50',
    doc: 'Catalog (service list) changes are announced at most this often.',
  },
  { name: 'MESHREG_SESSION_HOST', default: '127.0.0.1', doc: 'Address the session server binds.' },
  {
    name: 'MESHREG_SESSION_PORT',
    default: '9600',
    doc: 'Port of the session server (agent WebSocket and /health).',
  },
  { name: 'MESHREG_SESSION_ADVERTISE_URL', default: '(derived)', doc: 'WebSocket URL handed to agents.' },
  {
    name: 'MESHREG_SESSION_MAX_FRAME_BYTES',
    default: '4194304',
    doc: 'Largest frame an agent may send; larger closes with 1009.',
  },
  { name: 'MESHREG_SESSION_HELLO_TIMEOUT_MS', default: '5000', doc: 'Time an agent has to send its hello.' },
  { name: 'MESHREG_SESSION_PING_INTERVAL_MS', default: '5000', doc: 'Ping interval asked of agents.' },
  {
    name: 'MESHREG_SESSION_IDLE_TIMEOUT_MS',
    default: '15000',
    doc: 'A connection silent this long is closed (4011).',
  },
  {
    name: 'MESHREG_SESSION_MAX_FRAMES_PER_SEC',
    default: '1000',
    doc: 'Sustained frame rate per connection; above closes with 4004.',
  },
  { name: 'MESHREG_SESSION_FRAME_BURST', default: '5000', doc: 'Frame burst allowed per connection.' },
  {
    name: 'MESHREG_SESSION_CLIENT_GRACE_MS',
    default: '5000',
    doc: "How long a closed connection's instances are kept before removal.",
  },
  {
    name: 'MESHREG_PUSH_COALESCE_MS',
    default: '2',
    doc: 'Changes within this window are pushed together (0: next tick).',
  },
  {
    name: 'MESHREG_PUSH_ACK_TIMEOUT_MS',
    default: '2000',
    doc: 'A push not acknowledged in this time is re-sent.',
  },
  { name: 'MESHREG_PUSH_MAX_RETRIES', default: '3', doc: 'Re-sends before the connection is closed (4010).' },
  {
    name: 'MESHREG_RECONCILE_INTERVAL_MS',
    default: '5000',
    doc: 'Period of the version reconciliation with data servers.',
  },
  {
    name: 'MESHREG_DATA_WARMUP_MS',
    default: '3000',
    doc: 'After a data server starts, pushes are marked incomplete this long.',
  },
  { name: 'MESHREG_SLOT_COUNT', default: '256', doc: 'Number of slots (a power of two).' },
  { name: 'MESHREG_SLOT_FOLLOWERS', default: '1', doc: 'Followers per slot.' },
  { name: 'MESHREG_SLOT_MAX_LEADER_MOVES', default: '6', doc: 'Leader moves per rebalancing round.' },
  {
    name: 'MESHREG_SESSION_MAX_SUBSCRIPTIONS_PER_AGENT',
    default: '10000',
    doc: 'Most services one agent connection may watch (1..1000000); more are refused with `limit_exceeded`.',
  },
  {
    name: 'MESHREG_LINK_MAX_HELLO_BYTES',
    default: '65536',
    doc: 'Largest frame a server link accepts before its hello is accepted (1 KiB..1 MiB); larger closes with 1009.',
  },
  {
    name: 'MESHREG_LINK_HELLO_TIMEOUT_MS',
    default: '5000',
    doc: 'Time a peer that connected to a server link has to say an accepted hello (10..3600000); closed with 4008 after it.',
  },
  {
    name: 'MESHREG_LINK_RETRY_INITIAL_MS',
    default: '50',
    doc: 'First reconnect delay of a link between servers after a failure (1..60000); doubles per failure, half of it jittered.',
  },
  {
    name: 'MESHREG_LINK_RETRY_MAX_MS',
    default: '2000',
    doc: 'Longest reconnect delay of a link between servers (1..3600000, not below MESHREG_LINK_RETRY_INITIAL_MS).',
  },
  {
    name: 'MESHREG_SESSION_MAX_HELLO_BYTES',
    default: '65536',
    doc: 'Largest frame an agent may send before its hello is accepted (1 KiB..1 MiB); larger closes with 1009.',
  },
];

/** Bounds of the variables that size per-connection state (min..max, inclusive). */
export const SESSION_MAX_SUBSCRIPTIONS_BOUNDS = { min: 1, max: 1_000_000 } as const;

export function readControlPlaneConfig(env: NodeJS.ProcessEnv, opts: { dev: boolean }): ControlPlaneConfig {
  const e = envVar.from(env);
  const int = (name: string, def: number, min = 0, max = MAX_SETTING_MS): number =>
    boundedInt(env, name, def, min, max);
  let token = e.get('MESHREG_TOKEN').default('').asString();
  if (token === '') {
    if (!opts.dev) throw new Error('MESHREG_TOKEN is required: agents authenticate with it');
    token = randomUUID();
  }
  const slotCount = int('MESHREG_SLOT_COUNT', 256, 1, 65_536);
  if (!isPowerOfTwo(slotCount)) throw new Error('MESHREG_SLOT_COUNT must be a power of two');
  const level = e
    .get('MESHREG_LOG_LEVEL')
    .default('info')
    .asEnum([...LOG_LEVELS]);
  const pingIntervalMs = int('MESHREG_SESSION_PING_INTERVAL_MS', 5000, 10);
  const idleTimeoutMs = int('MESHREG_SESSION_IDLE_TIMEOUT_MS', 15000, 10);
  if (idleTimeoutMs <= pingIntervalMs) {
    throw new Error('MESHREG_SESSION_IDLE_TIMEOUT_MS must be greater than MESHREG_SESSION_PING_INTERVAL_MS');
  }
  const host = os.hostname();
  const roles = e
    .get('MESHREG_ROLES')
    .default('meta,data,session')
    .asArray(',')
    .map((r) => r.trim());
  for (const r of roles)
    if (!(ROLES as readonly string[]).includes(r))
      throw new Error(`MESHREG_ROLES: unknown role "${r}" (known: ${ROLES.join(', ')})`);
  if (roles.length === 0) throw new Error('MESHREG_ROLES must name at least one role');
  // A session forwards an agent's frame to a data server in one call: it must fit the link.
  if (
    int('MESHREG_SESSION_MAX_FRAME_BYTES', 4 * MIB, 1024, 1024 * MIB) >
    int('MESHREG_LINK_MAX_FRAME_BYTES', 64 * MIB, 1024, 1024 * MIB)
  )
    throw new Error('MESHREG_SESSION_MAX_FRAME_BYTES must not exceed MESHREG_LINK_MAX_FRAME_BYTES');
  const heartbeatMs = int('MESHREG_HEARTBEAT_MS', 1000, 10);
  const leaseMs = int('MESHREG_META_LEASE_MS', 5000, 10);
  if (leaseMs <= heartbeatMs)
    throw new Error('MESHREG_META_LEASE_MS must be greater than MESHREG_HEARTBEAT_MS');
  const retry = Object.freeze({
    initialMs: int('MESHREG_LINK_RETRY_INITIAL_MS', 50, 1, 60_000),
    maxMs: int('MESHREG_LINK_RETRY_MAX_MS', 2000, 1, 3_600_000),
  });
  if (retry.maxMs < retry.initialMs)
    throw new Error('MESHREG_LINK_RETRY_MAX_MS must not be below MESHREG_LINK_RETRY_INITIAL_MS');
  const metaPort = e.get('MESHREG_META_PORT').default('9610').asPortNumber();
  const metaUrls = e
    .get('MESHREG_META_URL')
    .default(`ws://127.0.0.1:${metaPort}/v1/meta-link`)
    .asArray(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  const etcdEndpoints = e
    .get('MESHREG_ETCD_ENDPOINTS')
    .default('')
    .asArray(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  if (e.get('MESHREG_META_STORE').asString() === 'etcd' && etcdEndpoints.length === 0) {
    throw new Error('MESHREG_META_STORE=etcd needs MESHREG_ETCD_ENDPOINTS (e.g. http://127.0.0.1:2379)');
  }
  return Object.freeze({
    logLevel: level,
    admin: Object.freeze({
      token: e.get('MESHREG_ADMIN_TOKEN').default('').asString(),
      remote: e.get('MESHREG_ADMIN_REMOTE').default('false').asBool(),
    }),
    roles: Object.freeze(roles as Role[]),
    token,
    clusterToken: e.get('MESHREG_CLUSTER_TOKEN').default(token).asString(),
    link: Object.freeze({
      callTimeoutMs: int('MESHREG_LINK_CALL_TIMEOUT_MS', 5000, 10),
      maxFrameBytes: int('MESHREG_LINK_MAX_FRAME_BYTES', 64 * MIB, 1024, 1024 * MIB),
      heartbeatMs,
      maxHelloBytes: int('MESHREG_LINK_MAX_HELLO_BYTES', 64 * 1024, 1024, MIB),
      helloTimeoutMs: int('MESHREG_LINK_HELLO_TIMEOUT_MS', 5000, 10, 3_600_000),
      retry,
    }),
    session: Object.freeze({
      id: e.get('MESHREG_SESSION_ID').default(`session-${host}-${process.pid}`).asString(),
      host: e.get('MESHREG_SESSION_HOST').default('127.0.0.1').asString(),
      port: e.get('MESHREG_SESSION_PORT').default('9600').asPortNumber(),
      advertiseUrl: e.get('MESHREG_SESSION_ADVERTISE_URL').default('').asString(),
      maxFrameBytes: int('MESHREG_SESSION_MAX_FRAME_BYTES', 4 * MIB, 1024, 1024 * MIB),
      maxHelloBytes: int('MESHREG_SESSION_MAX_HELLO_BYTES', 64 * 1024, 1024, MIB),
      helloTimeoutMs: int('MESHREG_SESSION_HELLO_TIMEOUT_MS', 5000, 10),
      pingIntervalMs,
      idleTimeoutMs,
      maxFramesPerSec: int('MESHREG_SESSION_MAX_FRAMES_PER_SEC', 1000, 1, 10_000_000),
      frameBurst: int('MESHREG_SESSION_FRAME_BURST', 5000, 1, 10_000_000),
      clientGraceMs: int('MESHREG_SESSION_CLIENT_GRACE_MS', 5000),
      pushCoalesceMs: int('MESHREG_PUSH_COALESCE_MS', 2, 0, 60_000),
      pushAckTimeoutMs: int('MESHREG_PUSH_ACK_TIMEOUT_MS', 2000, 10),
      pushMaxRetries: int('MESHREG_PUSH_MAX_RETRIES', 3, 0, 1000),
      reconcileIntervalMs: int('MESHREG_RECONCILE_INTERVAL_MS', 5000, 10),
      maxSubscriptionsPerAgent: int(
        'MESHREG_SESSION_MAX_SUBSCRIPTIONS_PER_AGENT',
        10_000,
        SESSION_MAX_SUBSCRIPTIONS_BOUNDS.min,
        SESSION_MAX_SUBSCRIPTIONS_BOUNDS.max,
      ),
    }),
    data: Object.freeze({
      id: e.get('MESHREG_DATA_ID').default(`data-${host}-${process.pid}`).asString(),
      host: e.get('MESHREG_DATA_HOST').default('127.0.0.1').asString(),
      port: e.get('MESHREG_DATA_PORT').default('9620').asPortNumber(),
      advertiseHost: e.get('MESHREG_DATA_ADVERTISE_HOST').default('').asString(),
      warmupMs: int('MESHREG_DATA_WARMUP_MS', 3000),
      catalogDebounceMs: int('MESHREG_CATALOG_DEBOUNCE_MS', 50, 0, 60_000),
      sessionGraceMs: int('MESHREG_DATA_SESSION_GRACE_MS', 10_000),
      migrationTimeoutMs: int('MESHREG_DATA_MIGRATION_TIMEOUT_MS', 10000, 10),
    }),
    meta: Object.freeze({
      host: e.get('MESHREG_META_HOST').default('127.0.0.1').asString(),
      port: metaPort,
      url: metaUrls[0] ?? '',
      urls: Object.freeze(metaUrls),
      store: e.get('MESHREG_META_STORE').default('embedded').asEnum(['embedded', 'etcd']),
      etcdEndpoints: Object.freeze(etcdEndpoints),
      etcdPrefix: e.get('MESHREG_ETCD_PREFIX').default('/meshreg/').asString(),
      etcdLeaseTtlS: int('MESHREG_ETCD_LEASE_TTL_S', 5, 1, 3600),
      leaseMs,
      warmupMs: int('MESHREG_META_WARMUP_MS', 1000),
      arrangeIntervalMs: int('MESHREG_META_ARRANGE_INTERVAL_MS', 1000, 10),
      slotCount,
      slotFollowers: int('MESHREG_SLOT_FOLLOWERS', 1, 0, 64),
      maxLeaderMoves: int('MESHREG_SLOT_MAX_LEADER_MOVES', 6, 1, 65_536),
    }),
  });
}

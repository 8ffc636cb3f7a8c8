/**
 * Control-plane configuration, read once from `MESHREG_*` environment variables into a frozen object.
 */
import os from 'node:os';
import envVar from 'env-var';
import { MAX_SETTING_MS, MIB, boundedInt } from '../proto/runtime/env-bounds.js';
import { LOG_LEVELS, type LogLevel } from '../proto/runtime/log.js';
import { readShutdownTimeoutMs } from '../proto/runtime/shutdown.js';
import {
  plaintextRefusal,
  readTlsConfig,
  tlsConfigured,
  type TlsConfig,
} from '../proto/runtime/tls-config.js';
import { isPowerOfTwo } from '../proto/slot-table.js';
import type { ProtectionOptions } from './link/protection.js';
import { isDatacenterName } from '../proto/datacenter.js';
import { readTokenSettings, type TokenFiles } from './auth/token-config.js';

export type Role = 'meta' | 'data' | 'session';
export const ROLES: readonly Role[] = ['meta', 'data', 'session'];

/** The federation variables as given; meta turns them into the configuration it pushes to sessions. */
export interface FederationSettings {
  readonly peers: string;
  readonly exports: string;
  readonly tokenFile: string;
  readonly file: string;
  readonly digestMs: number;
}

export interface ControlPlaneConfig {
  readonly logLevel: LogLevel;
  /** The whole graceful stop's bound (`MESHREG_SHUTDOWN_TIMEOUT_MS`): past it the process exits 1. */
  readonly shutdownTimeoutMs: number;
  readonly admin: {
    /** Bearer token of the admin API; '' turns it off. */
    readonly token: string;
    /** Accept admin requests from non-loopback clients. */
    readonly remote: boolean;
  };
  readonly roles: readonly Role[];
  /** The shared agent token (`MESHREG_TOKEN`); '' when agent tokens come from files only. */
  readonly token: string;
  readonly clusterToken: string;
  /** This control plane's data center (`MESHREG_DATACENTER`). */
  readonly datacenter: string;
  /** Federation as configured (read by meta; see `federation/federation-config.ts`). */
  readonly federation: FederationSettings;
  /** The token files: policy, shared agent token, admin token (reloaded on SIGHUP and change). */
  readonly tokens: TokenFiles;
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
    readonly writeRatePerSec: number;
    readonly writeBurst: number;
    /** Bytes that may wait for one agent before it is closed as a slow consumer (4014). */
    readonly maxQueuedBytes: number;
    /** Past any of these the session is overloaded and asks agents to slow down. */
    readonly overload: {
      readonly lagMs: number;
      readonly pendingWrites: number;
      readonly pushPending: number;
      readonly queuedBytes: number;
      readonly retryAfterMs: number;
    };
  };
  readonly data: {
    readonly id: string;
    readonly host: string;
    readonly port: number;
    readonly advertiseHost: string;
    readonly warmupMs: number;
    readonly warmupQuietMs: number;
    readonly warmupMaxMs: number;
    readonly warmupNotifyMs: number;
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
    /** Console event streams (`/admin/console/events`) open at once, at most. */
    readonly consoleMaxStreams: number;
  };
  /** Protection mode of every role: how many removals by silence a window allows. */
  readonly protection: ProtectionOptions;
  /** TLS of every role port and every link between servers (none set: plain). */
  readonly tls: TlsConfig;
  /** Per role port: sockets per client address, and handshakes under way at once. */
  readonly connLimits: { readonly maxPerIp: number; readonly maxPending: number };
}

export { CONTROL_PLANE_VARS, type VarDoc } from './config-vars.js';

/** Bounds of the variables that size per-connection state (min..max, inclusive). */
export const SESSION_MAX_SUBSCRIPTIONS_BOUNDS = { min: 1, max: 1_000_000 } as const;

/** `[default, min, max]` of the connection bounds of every role port. */
export const CONN_LIMIT_BOUNDS = {
  MESHREG_MAX_CONNECTIONS_PER_IP: [512, 1, 65_536],
  MESHREG_MAX_PENDING_HANDSHAKES: [256, 1, 65_536],
} as const;

export function readControlPlaneConfig(env: NodeJS.ProcessEnv, opts: { dev: boolean }): ControlPlaneConfig {
  const e = envVar.from(env);
  const int = (name: string, def: number, min = 0, max = MAX_SETTING_MS): number =>
    boundedInt(env, name, def, min, max);
  const secrets = readTokenSettings(env, opts);
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
  const tls = readTlsConfig(env, { server: true });
  const metaUrls = e
    .get('MESHREG_META_URL')
    .default(`${tlsConfigured(tls) ? 'wss' : 'ws'}://127.0.0.1:${metaPort}/v1/meta-link`)
    .asArray(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  const etcdEndpoints = e
    .get('MESHREG_ETCD_ENDPOINTS')
    .default('')
    .asArray(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  for (const [name, url] of [
    ...metaUrls.map((u) => ['MESHREG_META_URL', u] as const),
    ['MESHREG_SESSION_ADVERTISE_URL', e.get('MESHREG_SESSION_ADVERTISE_URL').default('').asString()] as const,
  ]) {
    const refused = plaintextRefusal(tls, url, name);
    if (refused !== undefined) throw new Error(refused);
  }
  const connLimit = (name: keyof typeof CONN_LIMIT_BOUNDS): number => {
    const [def, min, max] = CONN_LIMIT_BOUNDS[name];
    return int(name, def, min, max);
  };
  const datacenter = e.get('MESHREG_DATACENTER').default('dc1').asString();
  if (!isDatacenterName(datacenter))
    throw new Error(
      `MESHREG_DATACENTER "${datacenter}" must be a data center name (letters, digits, "-" and "_")`,
    );
  if (e.get('MESHREG_META_STORE').asString() === 'etcd' && etcdEndpoints.length === 0) {
    throw new Error('MESHREG_META_STORE=etcd needs MESHREG_ETCD_ENDPOINTS (e.g. http://127.0.0.1:2379)');
  }
  return Object.freeze({
    logLevel: level,
    shutdownTimeoutMs: readShutdownTimeoutMs(env),
    admin: Object.freeze({
      token: secrets.adminToken,
      remote: e.get('MESHREG_ADMIN_REMOTE').default('false').asBool(),
    }),
    roles: Object.freeze(roles as Role[]),
    token: secrets.token,
    clusterToken: secrets.clusterToken,
    datacenter,
    federation: Object.freeze({
      peers: e.get('MESHREG_FEDERATION_PEERS').default('').asString(),
      exports: e.get('MESHREG_FEDERATION_EXPORTS').default('').asString(),
      tokenFile: e.get('MESHREG_FEDERATION_TOKEN_FILE').default('').asString(),
      file: e.get('MESHREG_FEDERATION_FILE').default('').asString(),
      digestMs: int('MESHREG_FEDERATION_DIGEST_MS', 6000, 100, 3_600_000),
    }),
    tokens: secrets.files,
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
      writeRatePerSec: int('MESHREG_SESSION_WRITE_RATE', 100_000, 1, 10_000_000),
      writeBurst: int('MESHREG_SESSION_WRITE_BURST', 100_000, 1, 10_000_000),
      maxQueuedBytes: int('MESHREG_SESSION_MAX_QUEUED_BYTES', 64 * MIB, 64 * 1024, 1024 * MIB),
      overload: Object.freeze({
        lagMs: int('MESHREG_SESSION_OVERLOAD_LAG_MS', 500, 10, 60_000),
        pendingWrites: int('MESHREG_SESSION_OVERLOAD_PENDING_WRITES', 50_000, 1, 10_000_000),
        pushPending: int('MESHREG_SESSION_OVERLOAD_PUSH_PENDING', 50_000, 1, 10_000_000),
        queuedBytes: int('MESHREG_SESSION_OVERLOAD_QUEUED_BYTES', 256 * MIB, 64 * 1024, 16 * 1024 * MIB),
        // At most what an agent honours (MAX_SLOW_DOWN_MS in the protocol).
        retryAfterMs: int('MESHREG_SESSION_OVERLOAD_RETRY_AFTER_MS', 2000, 100, 60_000),
      }),
    }),
    data: Object.freeze({
      id: e.get('MESHREG_DATA_ID').default(`data-${host}-${process.pid}`).asString(),
      host: e.get('MESHREG_DATA_HOST').default('127.0.0.1').asString(),
      port: e.get('MESHREG_DATA_PORT').default('9620').asPortNumber(),
      advertiseHost: e.get('MESHREG_DATA_ADVERTISE_HOST').default('').asString(),
      warmupMs: int('MESHREG_DATA_WARMUP_MS', 3000),
      warmupQuietMs: int('MESHREG_DATA_WARMUP_QUIET_MS', 500, 0, 60_000),
      warmupMaxMs: int('MESHREG_DATA_WARMUP_MAX_MS', 10_000, 0, 3_600_000),
      warmupNotifyMs: int('MESHREG_DATA_WARMUP_NOTIFY_MS', 1000, 0, 60_000),
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
      consoleMaxStreams: int('MESHREG_CONSOLE_MAX_STREAMS', 32, 1, 10_000),
    }),
    protection: Object.freeze({
      maxRemovalPercent: int('MESHREG_PROTECTION_MAX_REMOVAL_PERCENT', 15, 0, 100),
      windowMs: int('MESHREG_PROTECTION_WINDOW_MS', 60_000, 100),
      minRemovals: int('MESHREG_PROTECTION_MIN_REMOVALS', 1, 0, 1_000_000),
    }),
    tls,
    connLimits: Object.freeze({
      maxPerIp: connLimit('MESHREG_MAX_CONNECTIONS_PER_IP'),
      maxPending: connLimit('MESHREG_MAX_PENDING_HANDSHAKES'),
    }),
  });
}

/**
 * Agent configuration, read once from `MESHREG_*` environment variables into a frozen object.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import envVar from 'env-var';
import { AGENT_LINK_PATH } from '../proto/agent-link.js';
import { MAX_SETTING_MS, MIB, boundedInt } from '../proto/runtime/env-bounds.js';
import { SHUTDOWN_TIMEOUT_VAR, readShutdownTimeoutMs } from '../proto/runtime/shutdown.js';
import { LOG_LEVELS, type LogLevel } from '../proto/runtime/log.js';
import { SECURITY_VARS, readSecuritySettings, type SecuritySettings } from './auth/security-config.js';
import { AGENT_SHUTDOWN_MODES, type AgentShutdownMode } from './agent-shutdown.js';
import {
  plaintextRefusal,
  readTlsConfig,
  tlsConfigured,
  type TlsConfig,
} from '../proto/runtime/tls-config.js';
import { topologyFromEnv } from './topology.js';

export interface AgentConfig {
  readonly logLevel: LogLevel;
  readonly host: string;
  readonly port: number;
  readonly token: string;
  readonly upstream: readonly string[];
  readonly nodeName: string;
  readonly nodeAddress: string;
  readonly datacenter: string;
  readonly zone: string;
  readonly region: string;
  readonly dataDir: string;
  readonly maxBodyBytes: number;
  readonly firstReadWaitMs: number;
  readonly connectTimeoutMs: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly fullSyncIntervalMs: number;
  readonly maxFrameBytes: number;
  readonly viewCacheWriteIntervalMs: number;
  readonly configDir: string;
  readonly configReloadMs: number;
  /** How long a deregistered service stays published as draining (0: removed at once, as in Consul). */
  readonly drainMs: number;
  /** What SIGTERM does to this host's registrations: keep them, drain them, or deregister them. */
  readonly shutdownMode: AgentShutdownMode;
  /** The whole graceful stop's bound: past it the process exits non-zero. */
  readonly shutdownTimeoutMs: number;
  readonly checkMinIntervalMs: number;
  readonly checkMinDeregisterMs: number;
  readonly checkReapIntervalMs: number;
  /** Port of the gRPC xDS server; -1 turns it off, 0 picks a free one. */
  readonly xdsPort: number;
  /** A watched service nobody read for this long (and no blocking query or xDS uses) is evicted. */
  readonly watchIdleMs: number;
  /** Most services watched at once. */
  readonly maxWatches: number;
  /** Bounds of the agent's HTTP server. */
  readonly http: AgentHttpLimits;
  /** The local API's token and the health checks' network policy. */
  readonly security: SecuritySettings;
  /** TLS of the link to the sessions (`wss://`): CA to verify them, certificate for mTLS. */
  readonly tls: TlsConfig;
}

/** Bounds of the agent's HTTP server (see the README's Limits table). */
export interface AgentHttpLimits {
  /** Open connections at most; sockets over it are closed at once, unanswered. */
  readonly maxConnections: number;
  /** Concurrent blocking queries per client address; more get 429 `rate_limited`. */
  readonly maxBlockingPerClient: number;
  /** Time a client has to send a request's headers (408 `request_timeout`). */
  readonly headersTimeoutMs: number;
  /** Time a client has to send a request's body once its headers arrived (408 `request_timeout`). */
  readonly bodyTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  readonly keepAliveTimeoutMs: number;
  /** Host names (no port) accepted in `Host` of writes, besides loopback names and the bind address. */
  readonly allowedHosts: readonly string[];
}

export interface VarDoc {
  readonly name: string;
  readonly default: string;
  readonly doc: string;
}

export const AGENT_VARS: readonly VarDoc[] = [
  {
    name: 'MESHREG_AGENT_HOST',
    default: '127.0.0.1',
    doc: 'Address the agent HTTP API binds (loopback unless you mean it).',
  },
  {
    name: 'MESHREG_AGENT_PORT',
    default: '8500',
    doc: "Agent HTTP port (Consul's, so Consul clients work with their defaults).",
  },
  {
    name: 'MESHREG_AGENT_UPSTREAM',
    default: `ws://127.0.0.1:9600${AGENT_LINK_PATH}`,
    doc: 'Session servers, comma-separated (`host:port` or `ws://` URLs).',
  },
  { name: 'MESHREG_TOKEN', default: '(required)', doc: 'Token presented to the session server.' },
  {
    name: 'MESHREG_TOKEN_FILE',
    default: '(none)',
    doc: 'File holding the token presented to the session server (trimmed; instead of MESHREG_TOKEN).',
  },
  { name: 'MESHREG_NODE_NAME', default: '(hostname)', doc: 'Node name shown in Consul responses.' },
  {
    name: 'MESHREG_NODE_ADDRESS',
    default: '127.0.0.1',
    doc: 'Node address; a service with no Address uses it.',
  },
  { name: 'MESHREG_DATACENTER', default: 'dc1', doc: 'Datacenter name in Consul responses.' },
  { name: 'MESHREG_ZONE', default: '', doc: 'Zone of this node (EDS locality).' },
  { name: 'MESHREG_REGION', default: '', doc: 'Region of this node (EDS locality).' },
  {
    name: 'MESHREG_TOPOLOGY_FILE',
    default: '',
    doc: 'JSON file `{"zone","region"}` read at start instead of MESHREG_ZONE/MESHREG_REGION; `meshreg topology` writes it.',
  },
  {
    name: 'MESHREG_AGENT_DATA_DIR',
    default: '.meshreg-data/agent-<port>',
    doc: 'Where the agent keeps its node ID and registrations.',
  },
  {
    name: 'MESHREG_AGENT_MAX_BODY_BYTES',
    default: '1048576',
    doc: 'Largest HTTP request body; larger gets 413.',
  },
  {
    name: 'MESHREG_AGENT_FIRST_READ_WAIT_MS',
    default: '1000',
    doc: 'How long the first read of a never-watched service waits for its first push.',
  },
  {
    name: 'MESHREG_AGENT_CONNECT_TIMEOUT_MS',
    default: '3000',
    doc: 'Time allowed for connect + handshake with a session.',
  },
  {
    name: 'MESHREG_AGENT_BACKOFF_INITIAL_MS',
    default: '100',
    doc: 'First reconnect delay (doubles, jittered).',
  },
  { name: 'MESHREG_AGENT_BACKOFF_MAX_MS', default: '5000', doc: 'Longest reconnect delay.' },
  {
    name: 'MESHREG_AGENT_FULL_SYNC_INTERVAL_MS',
    default: '60000',
    doc: 'Period (jittered) of re-sending unconfirmed changes.',
  },
  {
    name: 'MESHREG_AGENT_SHUTDOWN',
    default: 'keep',
    doc: 'On SIGTERM: keep (registrations stay; the agent comes back), drain (published as draining for MESHREG_AGENT_DRAIN_MS) or deregister.',
  },
  SHUTDOWN_TIMEOUT_VAR,
  ...httpLimitVars(),
  {
    name: 'MESHREG_XDS_PORT',
    default: '8502',
    doc: 'Port of the gRPC xDS server (ADS/EDS); -1 turns it off.',
  },
  {
    name: 'MESHREG_AGENT_CONFIG_DIR',
    default: '',
    doc: 'A folder of JSON service definitions (Consul format), loaded at start and reloaded on change.',
  },
  {
    name: 'MESHREG_AGENT_WATCH_IDLE_MS',
    default: '600000',
    doc: 'A watched service not read for this long, with no blocking query or xDS subscriber, is unwatched (100..86400000).',
  },
  {
    name: 'MESHREG_AGENT_MAX_WATCHES',
    default: '10000',
    doc: 'Most services watched at once (1..1000000); a new one evicts the least recently read idle watch, or gets 429.',
  },
  ...SECURITY_VARS,
  ...agentTlsVars(),
];

/** Bounds (inclusive) of the watch-table settings: no value can make a timer or table unbounded. */
export const WATCH_BOUNDS = {
  idleMs: { min: 100, max: 86_400_000 },
  maxWatches: { min: 1, max: 1_000_000 },
} as const;

/** Accepts `host:port` or a `ws(s)://` URL; a bare host:port gets the agent-link path. */
export function normaliseUpstream(entry: string, scheme: 'ws' | 'wss' = 'ws'): string {
  const t = entry.trim();
  if (/^wss?:\/\//.test(t)) {
    // URL.canParse is Node 20.9+, which package.json requires: a bad entry is a config error, not a crash.
    if (!URL.canParse(t)) throw new Error(`MESHREG_AGENT_UPSTREAM: ${JSON.stringify(t)} is not a valid URL`);
    return new URL(t).pathname === '/' ? `${t.replace(/\/$/, '')}${AGENT_LINK_PATH}` : t;
  }
  return `${scheme}://${t}${AGENT_LINK_PATH}`;
}

/** The agent's token: `MESHREG_TOKEN`, or the trimmed content of `MESHREG_TOKEN_FILE` (not both). */
function agentToken(env: NodeJS.ProcessEnv): string {
  const file = (env['MESHREG_TOKEN_FILE'] ?? '').trim();
  if (file === '') return env['MESHREG_TOKEN'] ?? '';
  if ((env['MESHREG_TOKEN'] ?? '') !== '')
    throw new Error('set MESHREG_TOKEN or MESHREG_TOKEN_FILE, not both');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new Error(
      `MESHREG_TOKEN_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

export function readAgentConfig(
  env: NodeJS.ProcessEnv,
  overrides: { token?: string; upstream?: readonly string[] } = {},
): AgentConfig {
  const e = envVar.from(env);
  const int = (name: string, def: number, min: number, max = MAX_SETTING_MS): number =>
    boundedInt(env, name, def, min, max);
  const token = overrides.token ?? agentToken(env);
  if (token === '')
    throw new Error(
      'MESHREG_TOKEN (or MESHREG_TOKEN_FILE) is required: the agent authenticates to the session server with it',
    );
  const port = int('MESHREG_AGENT_PORT', 8500, 0, 65535);
  const tls = readTlsConfig(env, { server: false });
  const scheme = tlsConfigured(tls) ? 'wss' : 'ws';
  const upstream =
    overrides.upstream ??
    e
      .get('MESHREG_AGENT_UPSTREAM')
      .default(`${scheme}://127.0.0.1:9600${AGENT_LINK_PATH}`)
      .asArray(',')
      .filter((u) => u.trim() !== '')
      .map((u) => normaliseUpstream(u, scheme));
  if (upstream.length === 0) throw new Error('MESHREG_AGENT_UPSTREAM must name at least one session server');
  for (const u of upstream) {
    const refused = plaintextRefusal(tls, u, 'MESHREG_AGENT_UPSTREAM');
    if (refused !== undefined) throw new Error(refused);
  }
  const backoffInitialMs = int('MESHREG_AGENT_BACKOFF_INITIAL_MS', 100, 1, 600_000);
  const backoffMaxMs = int('MESHREG_AGENT_BACKOFF_MAX_MS', 5000, 1, 3_600_000);
  if (backoffMaxMs < backoffInitialMs) {
    throw new Error('MESHREG_AGENT_BACKOFF_MAX_MS must not be below MESHREG_AGENT_BACKOFF_INITIAL_MS');
  }
  return Object.freeze({
    logLevel: e
      .get('MESHREG_LOG_LEVEL')
      .default('info')
      .asEnum([...LOG_LEVELS]),
    host: e.get('MESHREG_AGENT_HOST').default('127.0.0.1').asString(),
    port,
    token,
    upstream: Object.freeze([...upstream]),
    nodeName: e.get('MESHREG_NODE_NAME').default(os.hostname()).asString(),
    nodeAddress: e.get('MESHREG_NODE_ADDRESS').default('127.0.0.1').asString(),
    datacenter: e.get('MESHREG_DATACENTER').default('dc1').asString(),
    ...topologyFromEnv(env),
    dataDir: e
      .get('MESHREG_AGENT_DATA_DIR')
      .default(path.join('.meshreg-data', `agent-${port}`))
      .asString(),
    maxBodyBytes: int('MESHREG_AGENT_MAX_BODY_BYTES', MIB, 1024, 64 * MIB),
    firstReadWaitMs: int('MESHREG_AGENT_FIRST_READ_WAIT_MS', 1000, 0, 60_000),
    connectTimeoutMs: int('MESHREG_AGENT_CONNECT_TIMEOUT_MS', 3000, 1, 600_000),
    backoffInitialMs,
    backoffMaxMs,
    fullSyncIntervalMs: int('MESHREG_AGENT_FULL_SYNC_INTERVAL_MS', 60_000, 100),
    maxFrameBytes: 64 * 1024 * 1024,
    viewCacheWriteIntervalMs: int('MESHREG_AGENT_VIEW_CACHE_WRITE_MS', 200, 1, 3_600_000),
    configDir: e.get('MESHREG_AGENT_CONFIG_DIR').default('').asString(),
    configReloadMs: int('MESHREG_AGENT_CONFIG_RELOAD_MS', 1000, 10, 3_600_000),
    drainMs: int('MESHREG_AGENT_DRAIN_MS', 0, 0, 3_600_000),
    shutdownMode: e
      .get('MESHREG_AGENT_SHUTDOWN')
      .default('keep')
      .asEnum([...AGENT_SHUTDOWN_MODES]),
    shutdownTimeoutMs: readShutdownTimeoutMs(env),
    checkMinIntervalMs: int('MESHREG_CHECK_MIN_INTERVAL_MS', 1000, 1, 3_600_000),
    checkMinDeregisterMs: int('MESHREG_CHECK_MIN_DEREGISTER_MS', 60_000, 1),
    checkReapIntervalMs: int('MESHREG_CHECK_REAP_INTERVAL_MS', 30_000, 100, 3_600_000),
    xdsPort: readXdsPort(e.get('MESHREG_XDS_PORT').default('8502').asInt()),
    http: readHttpLimits(env),
    security: readSecuritySettings(env),
    tls,
    watchIdleMs: int(
      'MESHREG_AGENT_WATCH_IDLE_MS',
      600_000,
      WATCH_BOUNDS.idleMs.min,
      WATCH_BOUNDS.idleMs.max,
    ),
    maxWatches: int(
      'MESHREG_AGENT_MAX_WATCHES',
      10_000,
      WATCH_BOUNDS.maxWatches.min,
      WATCH_BOUNDS.maxWatches.max,
    ),
  });
}

function readXdsPort(port: number): number {
  if (port < -1 || port > 65535) throw new Error('MESHREG_XDS_PORT must be -1 (off) or 0..65535');
  return port;
}

/**
 * `[default, min, max]` of each numeric agent HTTP limit. A function, not a constant, because
 * {@link AGENT_VARS} above is built from it while the module loads.
 */
function httpLimitTable() {
  return {
    MESHREG_AGENT_MAX_CONNECTIONS: [1024, 1, 65_536],
    MESHREG_AGENT_MAX_BLOCKING_PER_IP: [512, 1, 65_536],
    MESHREG_AGENT_HEADERS_TIMEOUT_MS: [10_000, 1000, 120_000],
    MESHREG_AGENT_BODY_TIMEOUT_MS: [10_000, 1000, 300_000],
    MESHREG_AGENT_KEEPALIVE_TIMEOUT_MS: [65_000, 1000, 600_000],
  } as const;
}
type HttpLimitName = keyof ReturnType<typeof httpLimitTable>;
/** Keep in step with the `(at most 64)` in the doc above, which is built before this is set. */
const MAX_ALLOWED_HOSTS = 64;

function httpLimitVars(): VarDoc[] {
  const docs: Record<HttpLimitName, string> = {
    MESHREG_AGENT_MAX_CONNECTIONS: 'Open HTTP connections at most; a socket over it is closed unanswered.',
    MESHREG_AGENT_MAX_BLOCKING_PER_IP: 'Concurrent blocking queries per client address; more get 429.',
    MESHREG_AGENT_HEADERS_TIMEOUT_MS: 'Time a client has to send request headers (408).',
    MESHREG_AGENT_BODY_TIMEOUT_MS: 'Time a client has to send a request body (408).',
    MESHREG_AGENT_KEEPALIVE_TIMEOUT_MS: 'An idle keep-alive HTTP connection is closed after this long.',
  };
  return [
    ...Object.entries(httpLimitTable()).map(([name, [def, min, max]]) => ({
      name,
      default: String(def),
      doc: `${docs[name as HttpLimitName]} (${String(min)}..${String(max)})`,
    })),
    {
      name: 'MESHREG_AGENT_ALLOWED_HOSTS',
      default: '',
      doc: `Host names, comma-separated, accepted in Host of PUT/POST/DELETE besides loopback (at most 64).`,
    },
  ];
}

/** Reads the agent HTTP bounds; a value outside its bounds is an error naming the variable. */
export function readHttpLimits(env: NodeJS.ProcessEnv): AgentHttpLimits {
  const e = envVar.from(env);
  const int = (name: HttpLimitName): number => {
    const [def, min, max] = httpLimitTable()[name];
    return boundedInt(env, name, def, min, max);
  };
  const allowedHosts = e
    .get('MESHREG_AGENT_ALLOWED_HOSTS')
    .default('')
    .asArray(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
  if (allowedHosts.length > MAX_ALLOWED_HOSTS)
    throw new Error(`MESHREG_AGENT_ALLOWED_HOSTS names at most ${String(MAX_ALLOWED_HOSTS)} hosts`);
  return Object.freeze({
    maxConnections: int('MESHREG_AGENT_MAX_CONNECTIONS'),
    maxBlockingPerClient: int('MESHREG_AGENT_MAX_BLOCKING_PER_IP'),
    headersTimeoutMs: int('MESHREG_AGENT_HEADERS_TIMEOUT_MS'),
    bodyTimeoutMs: int('MESHREG_AGENT_BODY_TIMEOUT_MS'),
    keepAliveTimeoutMs: int('MESHREG_AGENT_KEEPALIVE_TIMEOUT_MS'),
    allowedHosts: Object.freeze(allowedHosts),
  });
}

/** The TLS variables as the agent reads them (the link to the sessions is its only TLS client). */
function agentTlsVars(): VarDoc[] {
  return [
    {
      name: 'MESHREG_TLS_CERT_FILE',
      default: '',
      doc: 'PEM certificate the agent presents to sessions (mTLS); with MESHREG_TLS_KEY_FILE.',
    },
    { name: 'MESHREG_TLS_KEY_FILE', default: '', doc: 'PEM private key of MESHREG_TLS_CERT_FILE.' },
    {
      name: 'MESHREG_TLS_CA_FILE',
      default: '(system CAs)',
      doc: 'PEM CA bundle the sessions are verified against; any TLS file makes the upstream wss:// only.',
    },
    {
      name: 'MESHREG_TLS_SERVER_NAME',
      default: '(URL host)',
      doc: "Name checked in the session's certificate instead of the URL's host.",
    },
  ];
}

/**
 * The control plane's documented variables, for `--help` and the README's table: every variable
 * `readControlPlaneConfig` (config.ts) reads, with its default and what it does.
 */

import { SHUTDOWN_TIMEOUT_VAR } from '../proto/runtime/shutdown.js';

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
    name: 'MESHREG_TOKEN_FILE',
    default: '(none)',
    doc: 'File holding the shared agent token (trimmed; instead of MESHREG_TOKEN); reloaded on SIGHUP and change.',
  },
  {
    name: 'MESHREG_TOKEN_POLICY_FILE',
    default: '(none)',
    doc: 'JSON token policy: named agent tokens bound to nodes and service prefixes, admin and admin-read tokens (README "Tokens"); reloaded on SIGHUP and change.',
  },
  {
    name: 'MESHREG_ADMIN_TOKEN_FILE',
    default: '(none)',
    doc: 'File holding the admin token (trimmed; instead of MESHREG_ADMIN_TOKEN); reloaded on SIGHUP and change.',
  },
  {
    name: 'MESHREG_CLUSTER_TOKEN_FILE',
    default: '(none)',
    doc: 'File holding the cluster token (trimmed; instead of MESHREG_CLUSTER_TOKEN); read at start.',
  },
  {
    name: 'MESHREG_TOKEN_RELOAD_DEBOUNCE_MS',
    default: '200',
    doc: 'Quiet time after a token file changed before the tokens are reloaded (0..60000).',
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
    name: 'MESHREG_CONSOLE_MAX_STREAMS',
    default: '32',
    doc: 'Console live-update streams (`/admin/console/events` on meta) open at once, at most (1..10000).',
  },
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
    name: 'MESHREG_SESSION_WRITE_RATE',
    default: '100000',
    doc: 'Instances per second a session writes to data servers (1..10000000); more wait and go out in batches.',
  },
  {
    name: 'MESHREG_SESSION_WRITE_BURST',
    default: '100000',
    doc: 'Instances a session may write at once before MESHREG_SESSION_WRITE_RATE paces them (1..10000000).',
  },
  {
    name: 'MESHREG_SESSION_MAX_QUEUED_BYTES',
    default: '67108864',
    doc: 'Bytes that may wait for one agent that does not read (65536..1073741824); past it the connection closes with 4014 slow_consumer.',
  },
  {
    name: 'MESHREG_SESSION_OVERLOAD_LAG_MS',
    default: '500',
    doc: 'Event-loop lag past which a session is overloaded and sends agents slow_down (10..60000).',
  },
  {
    name: 'MESHREG_SESSION_OVERLOAD_PENDING_WRITES',
    default: '50000',
    doc: 'Writes waiting for data servers past which a session is overloaded (1..10000000).',
  },
  {
    name: 'MESHREG_SESSION_OVERLOAD_PUSH_PENDING',
    default: '50000',
    doc: 'Pushes sent and not yet acknowledged past which a session is overloaded (1..10000000).',
  },
  {
    name: 'MESHREG_SESSION_OVERLOAD_QUEUED_BYTES',
    default: '268435456',
    doc: 'Bytes queued for all agents past which a session is overloaded (65536..17179869184).',
  },
  {
    name: 'MESHREG_SESSION_OVERLOAD_RETRY_AFTER_MS',
    default: '2000',
    doc: 'Pause asked of agents in each slow_down frame (100..60000); agents add up to 50 % jitter.',
  },
  {
    name: 'MESHREG_SESSION_CLIENT_GRACE_MS',
    default: '5000',
    doc: "How long a closed connection's instances are kept before removal.",
  },
  SHUTDOWN_TIMEOUT_VAR,
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
  {
    name: 'MESHREG_DATA_WARMUP_QUIET_MS',
    default: '500',
    doc: 'Warm-up lasts past MESHREG_DATA_WARMUP_MS until no publish arrived for this long (0..60000; 0: off), so agents re-sending after a restart are all in before the first complete push.',
  },
  {
    name: 'MESHREG_DATA_WARMUP_MAX_MS',
    default: '10000',
    doc: 'Longest warm-up whatever keeps arriving (0..3600000; never below MESHREG_DATA_WARMUP_MS).',
  },
  {
    name: 'MESHREG_DATA_WARMUP_NOTIFY_MS',
    default: '1000',
    doc: 'During warm-up, changes are notified to sessions at most this often (0..60000; 0: every change): incomplete datums are not pushed for every re-sent batch.',
  },
  { name: 'MESHREG_SLOT_COUNT', default: '256', doc: 'Number of slots (a power of two).' },
  { name: 'MESHREG_SLOT_FOLLOWERS', default: '1', doc: 'Followers per slot.' },
  { name: 'MESHREG_SLOT_MAX_LEADER_MOVES', default: '6', doc: 'Leader moves per rebalancing round.' },
  {
    name: 'MESHREG_PROTECTION_MAX_REMOVAL_PERCENT',
    default: '15',
    doc: 'Protection mode: share of members, sessions or agent connections (0..100) a role may remove for silence within a window; more are held. 100 turns it off.',
  },
  {
    name: 'MESHREG_PROTECTION_WINDOW_MS',
    default: '60000',
    doc: 'Protection mode: the sliding window the share is counted over (100..86400000).',
  },
  {
    name: 'MESHREG_PROTECTION_MIN_REMOVALS',
    default: '1',
    doc: 'Protection mode: removals any window allows whatever the share (0..1000000), so a small cluster can still lose one member.',
  },
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
  {
    name: 'MESHREG_TLS_CERT_FILE',
    default: '(none: plain)',
    doc: 'PEM certificate (chain) of every role port (wss://, https://), also presented by links it dials; with MESHREG_TLS_KEY_FILE.',
  },
  { name: 'MESHREG_TLS_KEY_FILE', default: '(none)', doc: 'PEM private key of MESHREG_TLS_CERT_FILE.' },
  {
    name: 'MESHREG_TLS_CA_FILE',
    default: '(none)',
    doc: 'PEM CA bundle: role ports require client certificates signed by it (mTLS); links verify servers against it.',
  },
  {
    name: 'MESHREG_TLS_SERVER_NAME',
    default: '(URL host)',
    doc: "Name links check in the server's certificate instead of the URL's host.",
  },
  {
    name: 'MESHREG_TLS_MIN_VERSION',
    default: 'TLSv1.2',
    doc: 'Oldest TLS version offered: TLSv1.2 or TLSv1.3.',
  },
  {
    name: 'MESHREG_TLS_RELOAD_MS',
    default: '10000',
    doc: 'How often the TLS files are checked for a change and reloaded (0..3600000; 0: only on SIGHUP).',
  },
  {
    name: 'MESHREG_TLS_PROBES_WITHOUT_CLIENT_CERT',
    default: 'false',
    doc: 'With a CA: clients without a certificate may still GET /live, /health and /metrics (kubelet probes, scrapers); nothing else.',
  },
  {
    name: 'MESHREG_MAX_CONNECTIONS_PER_IP',
    default: '512',
    doc: 'Open sockets one client address may hold on a role port, loopback included (1..65536); more are closed at once.',
  },
  {
    name: 'MESHREG_MAX_PENDING_HANDSHAKES',
    default: '256',
    doc: 'Sockets of a role port still in their handshake, no accepted hello yet (1..65536); more are closed at once.',
  },
  {
    name: 'MESHREG_DATACENTER',
    default: 'dc1',
    doc: "This control plane's data center. Sessions refuse agents of another one (4015); federation peers know it by this name.",
  },
  {
    name: 'MESHREG_FEDERATION_PEERS',
    default: '(none)',
    doc: 'Federated data centers: `dc2=ws://host:port[,ws://…];dc3=…` (their session servers). Read by meta.',
  },
  {
    name: 'MESHREG_FEDERATION_TOKEN_FILE',
    default: '(none)',
    doc: 'File holding the token shared with the peers of MESHREG_FEDERATION_PEERS (a peer of the file may name its own).',
  },
  {
    name: 'MESHREG_FEDERATION_EXPORTS',
    default: '(none)',
    doc: 'What this data center exports to each peer: `dc2=web,api;dc3=web`. Nothing is exported by default.',
  },
  {
    name: 'MESHREG_FEDERATION_FILE',
    default: '(none)',
    doc: 'JSON file of peers (`name`, `addresses`, `tokenFile`, `exports`); export edits made through the admin API are written back to it.',
  },
  {
    name: 'MESHREG_FEDERATION_DIGEST_MS',
    default: '6000',
    doc: "Period of each session's digest comparison with every peer (100..3600000): what repairs a lost change notice.",
  },
];

/**
 * The console's JSON contract: the bodies of the aggregated, read-only admin endpoints meta serves
 * under `/admin/console/` (the web console and `meshreg ctl` read the same ones), the audit log, the
 * server-sent `changed` event, and the bodies of the console's write actions.
 *
 * Types only: nothing here runs. Times are milliseconds since the epoch (`…At`) or durations (`…Ms`).
 * The contract only grows: a field once published keeps its name and meaning.
 *
 * Writes: the existing admin routes (`POST /admin/switches/push`, `/admin/switches/client-off`,
 * `/admin/switches/publish-blacklist`, `/admin/switches/subscribe-blacklist`,
 * `/admin/members/:id/drain`, `/admin/protection/release`) accept an optional `reason` in their body
 * (the console always sends one); the console's own write routes ({@link ConsoleNodeDrain},
 * {@link ConsoleInstanceDrain}) require it (400 naming `reason`). Every write lands in the audit log.
 */

/** Who is calling, as the admin token says: the page shows write controls only for `write`. */
export interface ConsoleCaller {
  /** The token's name (`anonymous` for a loopback reader without a token). */
  readonly name: string;
  readonly access: 'read' | 'write';
}

/** One member of the control plane as meta sees it. */
export interface ConsoleMember {
  /** The member's ID (a data or session server ID; a meta's link URL). */
  readonly id: string;
  readonly role: 'meta' | 'data' | 'session';
  /** Its HTTP base (`http://host:port`): `/health`, `/metrics`, `/admin`, `/ui/`. */
  readonly address: string;
  /** Its link to meta is open (for meta itself: this meta answers). */
  readonly up: boolean;
  /** Time left on its lease; 0 when down or held by another meta. */
  readonly leaseLeftMs: number;
  /** Being drained (leaving: its agents or slots are handed to the others). */
  readonly draining: boolean;
  /** Answered this meta's console query in time (false: its details below are missing). */
  readonly reachable: boolean;
}

/** The meta that arranges slots. */
export interface ConsoleLeader {
  /** This meta leads (true) or another one does. */
  readonly self: boolean;
  /** The leader's ID when known, else ''. */
  readonly id: string;
  /** The store's fencing revision of the slot table last read ('0' with the embedded store). */
  readonly fencingRevision: string;
  /** `embedded`, `etcd` or `none`. */
  readonly store: string;
  /** The store answers. */
  readonly storeHealthy: boolean;
}

/** Slots of one data server in the table. */
export interface ConsoleSlotServer {
  readonly id: string;
  /** Slots it leads. */
  readonly led: number;
  /** Slots it follows (holds a replica of). */
  readonly followed: number;
}

/** The slot table in brief. */
export interface ConsoleSlots {
  readonly slotCount: number;
  readonly epoch: number;
  /** Every data server named by the table, by ID. */
  readonly servers: readonly ConsoleSlotServer[];
  /** Slots whose leader is still taking them over (as the data servers report). */
  readonly migrating: readonly number[];
}

/** The push switch. */
export interface ConsolePush {
  /** Pushes to agents are stopped (subscribers keep their last list). */
  readonly stopped: boolean;
  /** Agents (IP or node name) still pushed to while stopped. */
  readonly allow: readonly string[];
}

/** An agent the registry holds without a connection. */
export interface ConsoleOfflineAgent {
  readonly node: string;
  readonly nodeId: string;
  /** The session that holds it. */
  readonly session: string;
  /** `grace`: its publishers are kept for a grace period; `protection`: held by protection mode. */
  readonly why: 'grace' | 'protection';
  /** When its connection closed. */
  readonly since: number;
}

/** Connected and offline agents across every session. */
export interface ConsoleAgentCounts {
  readonly connected: number;
  readonly offline: number;
  /** The offline agents (at most 200; `offline` is the full count). */
  readonly offlineAgents: readonly ConsoleOfflineAgent[];
}

/** Push latency (send → acknowledgement) of one time window, over every session. */
export interface ConsoleLatencyWindow {
  /** The window's end. */
  readonly at: number;
  readonly windowMs: number;
  /** Acknowledged pushes in the window. */
  readonly count: number;
  /** 0 when `count` is 0. */
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** Protection mode of one member. */
export interface ConsoleProtection {
  readonly role: 'meta' | 'data' | 'session';
  readonly id: string;
  /** Holding removals now. */
  readonly active: boolean;
  /** Members, sessions or connections it holds. */
  readonly held: number;
}

/** A recent error-level event of one member (each keeps its last 50). */
export interface ConsoleError {
  readonly at: number;
  readonly role: 'meta' | 'data' | 'session';
  readonly member: string;
  readonly message: string;
  /** The error's code when it had one, else ''. */
  readonly code: string;
}

/** `GET /admin/console/overview`. */
export interface ConsoleOverview {
  /** Changes whenever anything below does: the page may skip an unchanged answer. Also the ETag. */
  readonly version: string;
  readonly generatedAt: number;
  readonly you: ConsoleCaller;
  readonly members: readonly ConsoleMember[];
  readonly leader: ConsoleLeader;
  readonly slots: ConsoleSlots;
  readonly push: ConsolePush;
  /** Agents refused (IP or node name). */
  readonly clientOff: readonly string[];
  readonly publishBlacklist: readonly string[];
  readonly subscribeBlacklist: readonly string[];
  /** Drained nodes and instances (`node/serviceId`): listed but out of discovery. */
  readonly drained: ConsoleDrained;
  readonly agents: ConsoleAgentCounts;
  /** Oldest first, the last 30 windows. */
  readonly pushLatency: readonly ConsoleLatencyWindow[];
  readonly protection: readonly ConsoleProtection[];
  /** Newest first, at most 50 over every member. */
  readonly errors: readonly ConsoleError[];
}

/** Nodes and instances drained by an operator. */
export interface ConsoleDrained {
  readonly nodes: readonly string[];
  /** `node/serviceId`. */
  readonly instances: readonly string[];
}

/** Instances of a service by the worst status of their checks, and those draining. */
export interface ConsoleHealthCounts {
  /** Instances whose worst check is passing / warning / critical. */
  readonly passing: number;
  readonly warning: number;
  readonly critical: number;
  /** Instances marked draining. */
  readonly draining: number;
}

/** One service in the list. */
export interface ConsoleServiceRow extends ConsoleHealthCounts {
  readonly name: string;
  /** Instances registered (every health, draining included). */
  readonly instances: number;
  /** Distinct zones of its instances, sorted ('' left out). */
  readonly zones: readonly string[];
  /** Distinct tags of its instances, sorted. */
  readonly tags: readonly string[];
}

/**
 * `GET /admin/console/services?filter=&health=&zone=&tag=&sort=&offset=&limit=`. `filter`: substring
 * of the name; `health`: `passing|warning|critical` (services with at least one such instance);
 * `sort`: `name|-name|instances|-instances|critical|-critical`; `limit` 1..500 (default 100).
 */
export interface ConsoleServicePage extends ConsolePaging {
  readonly services: readonly ConsoleServiceRow[];
}

/** The paging fields of a list answer. */
export interface ConsolePaging {
  /** Items matching the filters (before paging). */
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
  /** Members (data servers, sessions) that did not answer in time: their items are missing. */
  readonly unreachable: readonly string[];
}

/** A health check as the detail shows it. */
export interface ConsoleCheck {
  readonly id: string;
  readonly name: string;
  readonly status: 'passing' | 'warning' | 'critical';
  readonly output: string;
  readonly type: string;
}

/** One instance of a service. */
export interface ConsoleInstance {
  /** Service ID on its node. */
  readonly id: string;
  readonly node: string;
  readonly nodeId: string;
  readonly zone: string;
  readonly region: string;
  /** Service address, else the node's. */
  readonly address: string;
  readonly port: number;
  readonly weights: { readonly passing: number; readonly warning: number };
  readonly metadata: Readonly<Record<string, string>>;
  readonly tags: readonly string[];
  /** The worst of its checks. */
  readonly health: 'passing' | 'warning' | 'critical';
  readonly checks: readonly ConsoleCheck[];
  /** Draining: deregistered by its agent, or drained by an operator (`drainedBy`). */
  readonly draining: boolean;
  /** `node` or `instance` when an operator drained it (its node or itself), else ''. */
  readonly drainedBy: '' | 'node' | 'instance';
}

/** An agent watching a service. */
export interface ConsoleSubscriber {
  readonly node: string;
  readonly nodeId: string;
  readonly session: string;
  /** The datum version the agent acknowledged (0: none yet). */
  readonly ackedVersion: number;
  /** The version last sent to it (ahead of `ackedVersion` while a push is in flight). */
  readonly sentVersion: number;
}

/** `GET /admin/console/services/:name`. */
export interface ConsoleServiceDetail {
  readonly name: string;
  /** The datum's version at its slot leader (0: never published). */
  readonly version: number;
  /** The slot its name hashes to. */
  readonly slot: number;
  /** The data server leading that slot (it answered the instances). */
  readonly leader: string;
  /** Every instance, draining ones included. */
  readonly instances: readonly ConsoleInstance[];
  /** Agents watching it, over every session. */
  readonly subscribers: readonly ConsoleSubscriber[];
  /**
   * Always false: instances belong to their agents, which would register them again. Drain an
   * instance or its node instead; `deregisterNote` says so in words the page can show.
   */
  readonly deregister: false;
  readonly deregisterNote: string;
  /** Members that did not answer in time. */
  readonly unreachable: readonly string[];
}

/** One agent (node). */
export interface ConsoleAgent {
  readonly node: string;
  readonly nodeId: string;
  readonly zone: string;
  readonly session: string;
  /** Remote IP of its connection ('' when offline). */
  readonly address: string;
  /** When its connection was accepted (0 when offline). */
  readonly connectedSince: number;
  /** Its last frame. */
  readonly lastContact: number;
  /** Age of its discovery cache as it reported; null when it does not report one. */
  readonly cacheAgeMs: number | null;
  readonly offline: boolean;
  /** Instances it registered. */
  readonly registrations: number;
  /** Services it watches. */
  readonly subscriptions: number;
}

/**
 * `GET /admin/console/agents?filter=&status=&session=&offset=&limit=`. `filter`: substring of the
 * node name; `status`: `online|offline`; `limit` 1..500 (default 100); sorted by node.
 */
export interface ConsoleAgentPage extends ConsolePaging {
  readonly agents: readonly ConsoleAgent[];
}

/** One audit record: a write through the admin API, allowed or not by the time it ran. */
export interface ConsoleAuditRecord {
  readonly at: number;
  /** The token's name. */
  readonly who: string;
  /** E.g. `push.stop`, `member.drain`, `node.drain`, `instance.drain`, `client-off.edit`. */
  readonly action: string;
  /** What it acted on: a member ID, node, `node/serviceId`, list entries; '' for cluster-wide. */
  readonly target: string;
  /** As given in the request ('' where a reason is optional and none was given). */
  readonly reason: string;
  /** `ok`, or the error code it failed with. */
  readonly result: string;
}

/** `GET /admin/console/audit?limit=` (limit 1..10000, default 200). */
export interface ConsoleAudit {
  /** Newest first. */
  readonly records: readonly ConsoleAuditRecord[];
  /** Records held (the log keeps the last 10,000). */
  readonly total: number;
  /** `memory`: this meta's, lost on restart; `store`: kept in the meta store. */
  readonly persistence: 'memory' | 'store';
}

/** What a `changed` event says changed: the page re-fetches those parts. */
export type ConsolePart = 'overview' | 'services' | 'agents' | 'audit';

/** The data of a server-sent `event: changed` on `GET /admin/console/events`. */
export interface ConsoleChanged {
  /** Grows with every event. */
  readonly version: number;
  readonly parts: readonly ConsolePart[];
}

/** Every console write carries why: the audit log keeps it. */
export interface ConsoleReason {
  /** Required by the console's write routes (1..512 characters). */
  readonly reason: string;
}

/** `POST /admin/console/drain/node`: drains (or with `drained: false` restores) every instance of a node. */
export interface ConsoleNodeDrain extends ConsoleReason {
  readonly node: string;
  /** Default true. */
  readonly drained?: boolean;
}

/** `POST /admin/console/drain/instance`: drains (or restores) one instance. */
export interface ConsoleInstanceDrain extends ConsoleReason {
  readonly node: string;
  /** Its service ID on that node. */
  readonly id: string;
  /** Default true. */
  readonly drained?: boolean;
}

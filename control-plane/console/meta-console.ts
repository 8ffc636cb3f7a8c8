/**
 * The console's data as meta assembles it: what meta holds (members, slot table, switches, drained
 * set, audit log) plus what it asks its members over their meta links (agents, push latency,
 * services, datums, subscribers, errors, protection), each member bounded in time.
 */
import { createHash } from 'node:crypto';
import type {
  ConsoleAgentPage,
  ConsoleCaller,
  ConsoleError,
  ConsoleLeader,
  ConsoleMember,
  ConsoleOverview,
  ConsoleProtection,
  ConsoleServiceDetail,
  ConsoleServicePage,
  ConsoleServiceRow,
  ConsoleSlots,
  ConsoleSubscriber,
} from '../../proto/console.js';
import {
  CONSOLE_LINK,
  type DataConsoleSummary,
  type SessionConsoleSummary,
} from '../../proto/console-link.js';
import { MeshregError } from '../../proto/errors.js';
import { SERVICE_NAME_PATTERN } from '../../proto/instance.js';
import { slotOf, type SlotTable } from '../../proto/slot-table.js';
import type { Switches } from '../../proto/switches.js';
import { AuditLog } from './audit-log.js';
import { gather, type ConsoleMembers, type Gathered } from './console-gather.js';
import { selectAgents, selectServices, type AgentQuery, type ServiceQuery } from './console-query.js';
import { DrainedSet, drainedBy } from './drained.js';
import { mergeWindows } from './latency-windows.js';

/** What the console needs of meta. */
export interface ConsoleMetaHost extends ConsoleMembers {
  readonly table: SlotTable | undefined;
  readonly switchState: Switches;
  /** This meta's ID (its link URL) and HTTP base. */
  readonly url: string;
  leader(): ConsoleLeader;
  protection(): ConsoleProtection;
  errors(): ConsoleError[];
  /** Sends the drained set to every data server linked to this meta. */
  sendDrained(): void;
}

/** What the text of a `deregister` field says. */
export const DEREGISTER_NOTE =
  'Instances belong to their agents, which would register them again: drain the instance or its node instead.';

const MAX_ERRORS = 50;

/** Summaries of every member, gathered once per request. */
interface Summaries {
  readonly sessions: Gathered<SessionConsoleSummary>;
  readonly data: Gathered<DataConsoleSummary>;
}

export class MetaConsole {
  readonly #host: ConsoleMetaHost;
  readonly audit = new AuditLog();
  readonly drained: DrainedSet;
  /** The service rows last gathered, with the data servers' versions they were gathered at. */
  #rows: { key: string; rows: ConsoleServiceRow[]; unreachable: string[] } | undefined;

  constructor(host: ConsoleMetaHost) {
    this.#host = host;
    this.drained = new DrainedSet(() => {
      host.sendDrained();
    });
  }

  async summaries(): Promise<Summaries> {
    const [sessions, data] = await Promise.all([
      gather(this.#host, 'session', (p, ms) => p.call(CONSOLE_LINK.sessionSummary, {}, ms)),
      gather(this.#host, 'data', (p, ms) => p.call(CONSOLE_LINK.dataSummary, {}, ms)),
    ]);
    return { sessions, data };
  }

  /** `GET /admin/console/overview`. */
  async overview(you: ConsoleCaller, s?: Summaries): Promise<ConsoleOverview> {
    const sum = s ?? (await this.summaries());
    const sw = this.#host.switchState;
    const sessions = [...sum.sessions.answers.values()];
    const data = [...sum.data.answers.values()];
    const offlineAgents = sessions.flatMap((x) => x.offlineAgents).slice(0, 200);
    const errors = [
      ...this.#host.errors(),
      ...sessions.flatMap((x) => x.errors),
      ...data.flatMap((x) => x.errors),
    ]
      .sort((a, b) => b.at - a.at)
      .slice(0, MAX_ERRORS);
    const body: Omit<ConsoleOverview, 'version' | 'generatedAt' | 'you'> = {
      members: this.#members(sum),
      leader: this.#host.leader(),
      slots: slotSummary(this.#host.table, data),
      push: { stopped: sw.pushStopped, allow: sw.pushAllow },
      clientOff: sw.clientOff,
      publishBlacklist: sw.publishBlacklist,
      subscribeBlacklist: sw.subscribeBlacklist,
      drained: { nodes: this.drained.state.nodes, instances: this.drained.state.instances },
      agents: {
        connected: sessions.reduce((n, x) => n + x.connected, 0),
        offline: sessions.reduce((n, x) => n + x.offline, 0),
        offlineAgents,
      },
      pushLatency: mergeWindows(sessions.map((x) => x.latency)).slice(-30),
      protection: [
        this.#host.protection(),
        ...sessions.map((x) => x.protection),
        ...data.map((x) => x.protection),
      ],
      errors,
    };
    // Leases tick down between heartbeats: they are left out of the version, or it would always change.
    const steady = { ...body, members: body.members.map((m) => ({ ...m, leaseLeftMs: 0 })) };
    return { version: versionOf(steady), generatedAt: Date.now(), you, ...body };
  }

  #members(sum: Summaries): ConsoleMember[] {
    const unreachable = new Set([...sum.sessions.unreachable, ...sum.data.unreachable]);
    const self: ConsoleMember = {
      id: this.#host.url,
      role: 'meta',
      address: this.#host.url.replace(/^ws(s?):\/\//, 'http$1://').replace(/\/v1\/.*$/, ''),
      up: true,
      leaseLeftMs: 0,
      draining: false,
      reachable: true,
    };
    const others = this.#host.members().map((m): ConsoleMember => ({
      id: m.id,
      role: m.role,
      address: m.http,
      up: m.connected,
      leaseLeftMs: m.leaseLeftMs,
      draining: m.draining,
      reachable: !unreachable.has(m.id),
    }));
    return [self, ...others.sort((a, b) => a.role.localeCompare(b.role) || a.id.localeCompare(b.id))];
  }

  /** Every service row, gathered again only when a data server's datums changed. */
  async serviceRows(s?: Summaries): Promise<{ rows: ConsoleServiceRow[]; unreachable: string[] }> {
    const data =
      s?.data ?? (await gather(this.#host, 'data', (p, ms) => p.call(CONSOLE_LINK.dataSummary, {}, ms)));
    const key = [...data.answers]
      .map(([id, d]) => `${id}=${d.servicesVersion}`)
      .sort()
      .join(',');
    if (this.#rows?.key === key && data.unreachable.length === 0) return this.#rows;
    const rows = await gather(
      this.#host,
      'data',
      (p, ms) => p.callPaged(CONSOLE_LINK.services, {}, ms),
      new Set(data.answers.keys()),
    );
    const all = [...rows.answers.values()].flat();
    const unreachable = [...new Set([...data.unreachable, ...rows.unreachable])].sort();
    this.#rows = { key, rows: all, unreachable };
    return this.#rows;
  }

  /** `GET /admin/console/services`. */
  async services(q: ServiceQuery): Promise<ConsoleServicePage> {
    const { rows, unreachable } = await this.serviceRows();
    const selected = selectServices(rows, q);
    return {
      total: selected.length,
      offset: q.offset,
      limit: q.limit,
      services: selected.slice(q.offset, q.offset + q.limit),
      unreachable,
    };
  }

  /** `GET /admin/console/services/:name`. */
  async service(name: string): Promise<ConsoleServiceDetail> {
    if (name.length > 256 || !SERVICE_NAME_PATTERN.test(name))
      throw new MeshregError('invalid_argument', 'name: must be a service name', {
        fields: [{ path: 'name', message: 'must be a service name' }],
      });
    const t = this.#host.table;
    if (t === undefined || t.slotCount === 0) throw new MeshregError('unavailable', 'no slot table yet');
    const slot = t.slots[slotOf(name, t.slotCount)];
    if (slot === undefined) throw new MeshregError('internal', 'slot out of range');
    const [datum, subs] = await Promise.all([
      gather(
        this.#host,
        'data',
        (p, ms) => p.call(CONSOLE_LINK.datum, { service: name }, ms),
        new Set([slot.leader]),
      ),
      gather(this.#host, 'session', (p, ms) => p.call(CONSOLE_LINK.subscribers, { service: name }, ms)),
    ]);
    const d = datum.answers.get(slot.leader);
    const drained = this.drained.state;
    const subscribers: ConsoleSubscriber[] = [...subs.answers.values()]
      .flatMap((x) => x.subscribers)
      .sort((a, b) => a.node.localeCompare(b.node));
    return {
      name,
      version: d?.version ?? 0,
      slot: slot.id,
      leader: slot.leader,
      instances: (d?.instances ?? []).map((i) => ({
        id: i.id,
        node: i.node,
        nodeId: i.nodeId,
        zone: i.zone,
        region: i.region,
        address: i.address !== '' ? i.address : i.nodeAddress,
        port: i.port,
        weights: i.weights,
        metadata: i.meta,
        tags: i.tags,
        health: i.health,
        checks: i.checks,
        draining: i.draining === true,
        drainedBy: drainedBy(drained, i),
      })),
      subscribers,
      deregister: false,
      deregisterNote: DEREGISTER_NOTE,
      unreachable: [...datum.unreachable, ...subs.unreachable].sort(),
    };
  }

  /** `GET /admin/console/agents`. */
  async agents(q: AgentQuery): Promise<ConsoleAgentPage> {
    const got = await gather(this.#host, 'session', (p, ms) => p.callPaged(CONSOLE_LINK.agents, {}, ms));
    const selected = selectAgents([...got.answers.values()].flat(), q);
    return {
      total: selected.length,
      offset: q.offset,
      limit: q.limit,
      agents: selected.slice(q.offset, q.offset + q.limit),
      unreachable: got.unreachable,
    };
  }
}

/** The slot table in brief, with the migrating slots the data servers report. */
export function slotSummary(t: SlotTable | undefined, data: readonly DataConsoleSummary[]): ConsoleSlots {
  const servers = new Map<string, { led: number; followed: number }>();
  const of = (id: string): { led: number; followed: number } => {
    let s = servers.get(id);
    if (s === undefined) servers.set(id, (s = { led: 0, followed: 0 }));
    return s;
  };
  for (const s of t?.slots ?? []) {
    of(s.leader).led++;
    for (const f of s.followers) of(f).followed++;
  }
  return {
    slotCount: t?.slotCount ?? 0,
    epoch: t?.epoch ?? 0,
    servers: [...servers].map(([id, s]) => ({ id, ...s })).sort((a, b) => a.id.localeCompare(b.id)),
    migrating: [...new Set(data.flatMap((d) => d.migrating))].sort((a, b) => a - b),
  };
}

/** A short hash of `body`: equal bodies, equal versions. */
export function versionOf(body: unknown): string {
  return createHash('sha256').update(JSON.stringify(body)).digest('base64url').slice(0, 16);
}

/**
 * The meta role's admin routes and metrics. The routes: members and their health, the slot table, a
 * service's replicas, the operator switches, draining a member, and federation (`federation-ops.ts`).
 * Meta is the one place operators talk to; the CLI follows the addresses it returns to reach data and
 * session servers. The gauges: members by role and state, the slot table's epoch and the slots each
 * data server leads.
 */
import type {
  AdminMember,
  AdminMembers,
  AdminReplica,
  AdminServiceReplicas,
  AdminSlots,
} from '../../proto/admin-api.js';
import { MeshregError } from '../../proto/errors.js';
import { SERVICE_NAME_PATTERN } from '../../proto/instance.js';
import { observeGauges } from '../../proto/runtime/telemetry.js';
import { slotOf, type SlotTable } from '../../proto/slot-table.js';
import { decodeListEdit, decodePushSwitch } from '../../proto/switches.js';
import type { Decoded } from '../../proto/validate.js';
import { describe } from '../../proto/validate.js';
import type { AdminRoute } from '../admin/ops-http.js';
import { federationRoutes, type FederationAdminHost } from './federation-ops.js';
import type { SwitchBoard, SwitchList } from './switch-board.js';

/** One member as the admin API shows it (the type `meshreg ctl` decodes). */
export type MemberView = AdminMember;

/** What the routes need of meta. */
export interface MetaAdminHost extends FederationAdminHost {
  members(): MemberView[];
  readonly table: SlotTable | undefined;
  readonly switches: SwitchBoard;
  drain(id: string): MemberView;
}

/** `ws://host:port/v1/...` → `http://host:port`. */
export function httpBase(linkUrl: string): string {
  return linkUrl.replace(/^ws(s?):\/\//, 'http$1://').replace(/\/v1\/.*$/, '');
}

function body<T>(d: Decoded<T>): T {
  if (!d.ok) throw new MeshregError('invalid_argument', describe(d.errors), { fields: d.errors });
  return d.value;
}

function listRoute(
  host: MetaAdminHost,
  path: string,
  list: SwitchList,
  kind: 'clients' | 'services',
): AdminRoute {
  return {
    method: 'POST',
    path,
    handler: (req) => ({ status: 200, body: host.switches.edit(list, body(decodeListEdit(req.body, kind))) }),
  };
}

/** The routes, over `host`. */
export function metaAdminRoutes(host: MetaAdminHost): AdminRoute[] {
  return [
    {
      method: 'GET',
      path: '/admin/members',
      handler: () => ({ status: 200, body: { members: host.members() } satisfies AdminMembers }),
    },
    {
      method: 'GET',
      path: '/admin/slots',
      handler: () => {
        const t = host.table;
        const leaders: Record<string, number> = {};
        for (const s of t?.slots ?? []) leaders[s.leader] = (leaders[s.leader] ?? 0) + 1;
        return {
          status: 200,
          body: {
            epoch: t?.epoch ?? 0,
            slotCount: t?.slotCount ?? 0,
            leaders,
            slots: t?.slots ?? [],
          } satisfies AdminSlots,
        };
      },
    },
    {
      method: 'GET',
      path: '/admin/services/:service',
      handler: (req) => ({ status: 200, body: replicas(host, req.params['service'] ?? '') }),
    },
    { method: 'GET', path: '/admin/switches', handler: () => ({ status: 200, body: host.switches.state }) },
    {
      method: 'POST',
      path: '/admin/switches/push',
      handler: (req) => ({ status: 200, body: host.switches.setPush(body(decodePushSwitch(req.body))) }),
    },
    listRoute(host, '/admin/switches/client-off', 'clientOff', 'clients'),
    listRoute(host, '/admin/switches/publish-blacklist', 'publishBlacklist', 'services'),
    listRoute(host, '/admin/switches/subscribe-blacklist', 'subscribeBlacklist', 'services'),
    {
      method: 'POST',
      path: '/admin/members/:id/drain',
      handler: (req) => ({ status: 202, body: host.drain(req.params['id'] ?? '') }),
    },
    ...federationRoutes(host),
  ];
}

function replicas(host: MetaAdminHost, service: string): AdminServiceReplicas {
  if (service.length > 256 || !SERVICE_NAME_PATTERN.test(service))
    throw new MeshregError('invalid_argument', `service: must be a service name, got "${service}"`, {
      fields: [{ path: 'service', message: 'must be a service name' }],
    });
  const t = host.table;
  if (t === undefined) throw new MeshregError('unavailable', 'no slot table yet');
  const slot = t.slots[slotOf(service, t.slotCount)];
  if (slot === undefined) throw new MeshregError('internal', 'slot out of range');
  const byId = new Map(host.members().map((m) => [m.id, m]));
  const replica = (id: string, role: AdminReplica['role']): AdminReplica => ({
    id,
    role,
    http: byId.get(id)?.http ?? '',
  });
  return {
    service,
    slot: slot.id,
    epoch: t.epoch,
    replicas: [replica(slot.leader, 'leader'), ...slot.followers.map((f) => replica(f, 'follower'))],
  };
}

/** Registers meta's gauges; returns their unregistration. */
export function registerMetaMetrics(
  read: () => { members: readonly MemberView[]; table: SlotTable | undefined; expirations: number },
): () => void {
  return observeGauges(
    [
      {
        name: 'meshreg.meta.members',
        description: 'Members by role and whether their link is up',
        read: (o) => {
          const counts = new Map<string, { role: string; connected: boolean; n: number }>();
          for (const m of read().members) {
            const k = `${m.role}/${m.connected}`;
            const c = counts.get(k) ?? { role: m.role, connected: m.connected, n: 0 };
            c.n++;
            counts.set(k, c);
          }
          for (const c of counts.values()) o(c.n, { member_role: c.role, connected: String(c.connected) });
        },
      },
      {
        name: 'meshreg.meta.member_expirations',
        description: 'Members removed because their lease ran out (protection mode may hold more)',
        counter: true,
        read: (o) => o(read().expirations),
      },
      {
        name: 'meshreg.slot_table.epoch',
        description: 'Epoch of the slot table in use',
        read: (o) => o(read().table?.epoch ?? 0),
      },
      {
        name: 'meshreg.slot_table.leader_slots',
        description: 'Slots led by each data server',
        read: (o) => {
          const leaders = new Map<string, number>();
          for (const s of read().table?.slots ?? []) leaders.set(s.leader, (leaders.get(s.leader) ?? 0) + 1);
          for (const [id, n] of leaders) o(n, { data_id: id });
        },
      },
    ],
    { role: 'meta' },
  );
}

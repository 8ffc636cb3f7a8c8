/** Meta's gauges: members by role and state, the slot table's epoch and the slots each data server leads. */
import type { SlotTable } from '../../proto/slot-table.js';
import { observeGauges } from '../../proto/runtime/telemetry.js';
import type { MemberView } from './meta-admin.js';

/** Registers meta's gauges; returns their unregistration. */
export function registerMetaMetrics(
  read: () => { members: readonly MemberView[]; table: SlotTable | undefined },
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

/**
 * Where meta keeps what must outlive one meta process: the members of the cluster, the slot table
 * with its epoch, and who leads the metas. Embedded (one process, in memory: the default) or etcd
 * (several metas; etcd's leases and elections decide, never home-made consensus).
 */
import type { MemberRole } from '../../proto/cluster-records.js';
import type { SlotTable } from '../../proto/slot-table.js';

export interface SharedMember {
  readonly role: MemberRole;
  readonly url: string;
  readonly draining: boolean;
}

export interface MetaStoreEvents {
  /** The cluster-wide member list changed (members of every meta). */
  members(members: ReadonlyMap<string, SharedMember>): void;
  /** A new slot table was stored (by the leader, possibly another meta). */
  table(table: SlotTable): void;
  /** This meta became, or stopped being, the one that assigns slots. */
  leadership(leader: boolean): void;
  /** The store became reachable or unreachable. */
  health(healthy: boolean): void;
}

export interface MetaStore {
  readonly kind: 'embedded' | 'etcd';
  start(events: MetaStoreEvents): Promise<void>;
  /** Announces a member connected to this meta (kept alive by this meta). */
  putMember(id: string, member: SharedMember): void;
  /** Withdraws a member whose lease this meta saw run out. */
  deleteMember(id: string): void;
  /** Stores a table; only the leader may, and a lost leadership makes it fail (returns false). */
  saveTable(table: SlotTable): Promise<boolean>;
  readonly leader: boolean;
  readonly healthy: boolean;
  close(): Promise<void>;
}

/** The default: everything in this process; this meta is always the leader. */
export class EmbeddedStore implements MetaStore {
  readonly kind = 'embedded';
  readonly leader = true;
  readonly healthy = true;
  readonly #members = new Map<string, SharedMember>();
  #events: MetaStoreEvents | undefined;

  start(events: MetaStoreEvents): Promise<void> {
    this.#events = events;
    events.leadership(true);
    return Promise.resolve();
  }

  putMember(id: string, member: SharedMember): void {
    this.#members.set(id, member);
    this.#events?.members(this.#members);
  }

  deleteMember(id: string): void {
    if (this.#members.delete(id)) this.#events?.members(this.#members);
  }

  saveTable(table: SlotTable): Promise<boolean> {
    this.#events?.table(table);
    return Promise.resolve(true);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

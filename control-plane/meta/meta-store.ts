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
  /**
   * The stored slot table as read (by the leader, possibly another meta, wrote it), `undefined` when
   * none is stored, with the store's revision of it: what a leader passes to
   * {@link MetaStore.saveTable} as the revision it arranged from.
   */
  table(table: SlotTable | undefined, revision: string): void;
  /** This meta became, or stopped being, the one that assigns slots. */
  leadership(leader: boolean): void;
  /** The store became reachable or unreachable. */
  health(healthy: boolean): void;
}

/** How a table write ended: an expected failure is a value, not an exception. */
export type SaveOutcome = 'saved' | 'not_leader' | 'fenced' | 'unreachable';

export interface MetaStore {
  readonly kind: 'embedded' | 'etcd';
  start(events: MetaStoreEvents): Promise<void>;
  /** Announces a member connected to this meta (kept alive by this meta). */
  putMember(id: string, member: SharedMember): void;
  /** Withdraws a member whose lease this meta saw run out. */
  deleteMember(id: string): void;
  /**
   * Stops keeping a member this meta sent away (cut off from the store): its key is neither withdrawn
   * nor announced again by this meta; it stays until its lease runs out or the member re-joins a meta.
   */
  releaseMember(id: string): void;
  /**
   * Stores a table arranged from the stored table at revision `basedOn`. Only a verified leader may,
   * and the write is fenced: it fails (`fenced`) when leadership was lost or the stored table changed
   * since `basedOn`.
   */
  saveTable(table: SlotTable, basedOn: string): Promise<SaveOutcome>;
  /**
   * Reads the stored table and then the members again (reported through the events as usual): what
   * a leader does right before it arranges, so it never arranges from a view a watch left behind.
   * False when the store could not be read.
   */
  refresh(): Promise<boolean>;
  /** True only while this meta's leadership is verified. */
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
  /** Counts the tables saved: the same fencing as etcd's mod revision, in one process. */
  #revision = 0;

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

  releaseMember(): void {
    // One process: never cut off from itself, so it never sends members away.
  }

  saveTable(table: SlotTable, basedOn: string): Promise<SaveOutcome> {
    if (basedOn !== String(this.#revision)) return Promise.resolve('fenced');
    this.#revision++;
    this.#events?.table(table, String(this.#revision));
    return Promise.resolve('saved');
  }

  refresh(): Promise<boolean> {
    // Nothing to catch up with: every change is reported as it is made.
    return Promise.resolve(true);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

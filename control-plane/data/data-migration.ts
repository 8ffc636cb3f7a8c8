/**
 * A data server's migration of the slots it now leads: their publishers are collected from every
 * live session (paged), then the slots are served as complete. One migration per slot at a time.
 */
import type { Member, OwnedPublisher } from '../../proto/cluster-records.js';
import { DATA_LINK } from '../../proto/data-link.js';
import type { Logger } from '../../proto/runtime/log.js';
import type { RpcPeer } from '../link/rpc-peer.js';
import type { DataServer } from './data-server.js';

export interface DataMigrationOptions {
  readonly server: DataServer;
  readonly slotCount: number;
  /** Longest wait for every session to answer a migration before going ahead without it. */
  readonly migrationTimeoutMs: number;
  readonly logger: Logger;
  /** Whether meta has told the session members yet. */
  readonly membersKnown: () => boolean;
  /** The sessions meta lists. */
  readonly sessionMembers: () => readonly Member[];
  /** The sessions connected here, by ID. */
  readonly sessions: ReadonlyMap<string, { readonly peer: RpcPeer }>;
  /** Whether the data node stopped: a running migration gives up. */
  readonly stopped: () => boolean;
}

export class DataMigration {
  readonly #opts: DataMigrationOptions;
  /** Slots whose migration is running, so a newer table does not start a second one. */
  readonly #inFlight = new Set<number>();
  /**
   * Sessions this process has collected publishers from (a migration, or a restore on connect). A
   * session not in it that connects later may hold publishers of slots served here as complete
   * without them (it was not listed or not reachable then): the data node restores from it.
   */
  readonly collectedFrom = new Set<string>();

  constructor(opts: DataMigrationOptions) {
    this.#opts = opts;
  }

  /**
   * Rebuilds slots we now lead from every session's publishers, then serves them as complete.
   *
   * It waits for every session that is alive (listed by meta, or connected to us): declaring a slot
   * complete without one of them would push lists missing its instances (invariant 3). A session
   * that is neither listed nor connected is gone, and its agents re-register elsewhere. A newer table
   * does not cut a migration short; slots that stop being ours simply drop out of it.
   */
  async run(requested: readonly number[]): Promise<void> {
    const mine = requested.filter((s) => !this.#inFlight.has(s));
    if (mine.length === 0) return;
    for (const s of mine) this.#inFlight.add(s);
    let slots = mine;
    const started = Date.now();
    let warned = false;
    const collected: OwnedPublisher[] = [];
    // Which sessions to wait for is meta's member list: a table may arrive before it does (a data
    // server restarted within its lease), and "no session known" must not mean "nothing to collect".
    while (!this.#opts.membersKnown() && !this.#opts.stopped()) await new Promise((r) => setTimeout(r, 50));
    const pending = new Set([...this.#opts.sessionMembers().map((m) => m.id), ...this.#opts.sessions.keys()]);
    try {
      while (pending.size > 0) {
        if (this.#opts.stopped()) return;
        slots = slots.filter((s) => this.#opts.server.slotState(s) === 'migrating');
        if (slots.length === 0) return;
        await Promise.all([...pending].map((id) => this.#collectFrom(id, slots, collected, pending)));
        const alive = new Set([
          ...this.#opts.sessionMembers().map((m) => m.id),
          ...this.#opts.sessions.keys(),
        ]);
        for (const id of pending) if (!alive.has(id)) pending.delete(id);
        if (pending.size === 0) break;
        if (!warned && Date.now() - started > this.#opts.migrationTimeoutMs) {
          warned = true;
          this.#opts.logger.warn('migration still waiting for sessions; slots stay incomplete', {
            missing: [...pending],
            slots: slots.length,
          });
        }
        // Sessions that meta lists but that have not connected to us yet get a moment to do so.
        await new Promise((r) => setTimeout(r, 100));
      }
      this.#opts.server.finishMigration(
        slots.filter((s) => this.#opts.server.slotState(s) === 'migrating'),
        collected,
      );
    } finally {
      for (const s of mine) this.#inFlight.delete(s);
    }
  }

  async #collectFrom(
    id: string,
    slots: readonly number[],
    into: OwnedPublisher[],
    pending: Set<string>,
  ): Promise<void> {
    const s = this.#opts.sessions.get(id);
    if (s === undefined) return;
    try {
      // Paged: a session may hold hundreds of thousands of publishers, more than one frame carries.
      const items = await s.peer.callPaged(DATA_LINK.collect, { slots, slotCount: this.#opts.slotCount });
      into.push(...items);
      pending.delete(id);
      this.collectedFrom.add(id);
    } catch (err) {
      this.#opts.logger.warn('collect from session failed; will retry', { sessionId: id, err });
    }
  }
}

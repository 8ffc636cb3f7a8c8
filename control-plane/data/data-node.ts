/**
 * The data role as a process: a {@link DataServer} behind the data link, a member of meta, a
 * replication source for the followers of the slots it leads, and a follower of other leaders.
 *
 * - Sessions connect to the data link; they call publish/fetch/... and receive change events. The
 *   data server calls back `collect` on them when it must rebuild slots it now leads.
 * - Followers connect to the leader's data link and call `replicate`: a snapshot of the slots, then a
 *   stream of `repl` events, one per change, stamped with the leader's clock (the lag is measured).
 * - A session whose link closes keeps its publishers for the session grace period (live time: a
 *   stall of this server never shortens it), then they go, unless protection mode holds them. A
 *   session of this very process has no grace to run out: it lives as long as the process.
 */
import type { Member } from '../../proto/cluster-records.js';
import { DATA_LINK, DATA_LINK_PATH } from '../../proto/data-link.js';
import { REPLICATION_LINK, type ReplicationOp } from '../../proto/replication-link.js';
import type { Logger } from '../../proto/runtime/log.js';
import { liveTimeout, loopMonitor } from '../../proto/runtime/loop-monitor.js';
import type { ShutdownPhases } from '../../proto/runtime/shutdown.js';
import { CLUSTER_PROTOCOL_VERSION, type LinkHello } from '../../proto/rpc.js';
import { serveDataConsole } from '../console/data-console.js';
import { ErrorRing } from '../console/error-ring.js';
import { MetaMember, type MemberLinkOptions } from '../link/meta-member.js';
import type { SlotTable } from '../../proto/slot-table.js';
import { isLocal } from '../link/local-process.js';
import type { ProtectionOptions } from '../link/protection.js';
import {
  protectionRoutes,
  roleProtection,
  withProtection,
  type RoleProtection,
} from '../link/protection-ops.js';
import { RoleServer, type RoleServerOptions } from '../link/role-server.js';
import type { RpcPeer } from '../link/rpc-peer.js';
import { dataAdminRoutes, registerDataMetrics, tracedPublish } from './data-ops.js';
import { DataMigration } from './data-migration.js';
import { DataServer } from './data-server.js';
import { ReplicaFollower, replicaItems } from './replica-follower.js';
import { tombstoneMsFor } from './tombstones.js';

const MAX_DROPPED_SESSIONS = 1024;

export interface DataNodeOptions extends RoleServerOptions, MemberLinkOptions {
  readonly id: string;
  readonly advertiseHost: string;
  readonly slotCount: number;
  readonly warmupMs: number;
  /** See {@link DataServerOptions}: warm-up's quiet period, its longest, its notify interval. */
  readonly warmupQuietMs?: number;
  readonly warmupMaxMs?: number;
  readonly warmupNotifyMs?: number;
  readonly catalogDebounceMs: number;
  readonly sessionGraceMs: number;
  /** Longest wait for every session to answer a migration before going ahead without it. */
  readonly migrationTimeoutMs: number;
  readonly logger: Logger;
  /** Called once a drain asked by meta is complete: this server leads and follows no slot. */
  readonly onDrained?: () => void;
  /** Protection mode of session-grace drops (default: 15 % in 60 s, at least 1). */
  readonly protection?: ProtectionOptions;
}

interface SessionPeer {
  readonly peer: RpcPeer;
  readonly id: string;
}

export class DataNode {
  readonly server: DataServer;
  readonly #opts: DataNodeOptions;
  readonly #role: RoleServer;
  readonly #log: Logger;
  readonly #sessions = new Map<string, SessionPeer>();
  /** Sessions whose link closed, with the cancel of their grace timer. */
  readonly #sessionGrace = new Map<string, () => void>();
  readonly #protection: RoleProtection;
  /** Follower peers and the slots each replicates from us. */
  readonly #followers = new Map<RpcPeer, Set<number>>();
  /** Our links to the leaders we follow. */
  readonly #follower: ReplicaFollower;
  #dataMembers: readonly Member[] = [];
  #sessionMembers: readonly Member[] = [];
  #meta: MetaMember | undefined;
  readonly #migration: DataMigration;
  readonly #unregisterMetrics: () => void;
  #publishes = 0;
  /** Sessions whose publishers went after their grace (bounded), restored if they come back. */
  readonly #dropped = new Set<string>();
  #stopped = false;
  #membersKnown = false;
  #draining: 'no' | 'draining' | 'drained' = 'no';
  readonly #errors: ErrorRing;

  constructor(opts: DataNodeOptions) {
    this.#opts = opts;
    this.#errors = new ErrorRing('data', () => opts.id);
    this.#log = this.#errors.wrap(opts.logger.child({ role: 'data', dataId: opts.id }));
    this.server = new DataServer({
      id: opts.id,
      slotCount: opts.slotCount,
      warmupMs: opts.warmupMs,
      // Complete only once every session meta lists has reconnected (and gone quiet re-sending).
      warmupReady: () => this.#sessionsBack(),
      ...(opts.warmupQuietMs === undefined ? {} : { warmupQuietMs: opts.warmupQuietMs }),
      ...(opts.warmupMaxMs === undefined ? {} : { warmupMaxMs: opts.warmupMaxMs }),
      ...(opts.warmupNotifyMs === undefined ? {} : { warmupNotifyMs: opts.warmupNotifyMs }),
      catalogDebounceMs: opts.catalogDebounceMs,
      tombstoneMs: tombstoneMsFor(opts.sessionGraceMs),
      logger: this.#errors.wrap(opts.logger),
    });
    this.server.replicationSink = (op) => {
      this.#replicate(op);
    };
    this.#migration = new DataMigration({
      server: this.server,
      slotCount: opts.slotCount,
      migrationTimeoutMs: opts.migrationTimeoutMs,
      logger: this.#log,
      membersKnown: () => this.#membersKnown,
      sessionMembers: () => this.#sessionMembers,
      sessions: this.#sessions,
      stopped: () => this.#stopped,
    });
    this.#follower = new ReplicaFollower(this.server, {
      ...opts,
      hello: () => this.#hello(this.url),
      logger: this.#log,
    });
    const self = { role: 'data', kind: 'sessions', id: () => opts.id } as const;
    this.#protection = roleProtection(self, opts.protection, this.#log, (id) => {
      this.#dropSession(id);
    });
    this.#role = new RoleServer('data', opts, this.#log, () => this.health()).link(
      DATA_LINK_PATH,
      (peer, hello) => {
        this.#accept(peer, hello);
        return { id: opts.id };
      },
    );
    this.#role.ops([
      ...dataAdminRoutes(this.server, () => this.health()),
      ...protectionRoutes(this.#protection),
    ]);
    this.#unregisterMetrics = registerDataMetrics(this.server, () => ({
      sessions: this.#sessions.size,
      publishes: this.#publishes,
    }));
  }

  get url(): string {
    return this.#role.url(DATA_LINK_PATH);
  }

  /** What `/health` says; degraded while protection mode holds session drops. */
  health(): Record<string, unknown> {
    const base = {
      dataId: this.#opts.id,
      draining: this.#draining !== 'no',
      metaConnected: this.#meta?.connected === true,
      sessionsConnected: this.#sessions.size,
      ...this.server.stats(),
      replicationLagMs: this.#follower.lag(),
    };
    return withProtection(base, this.#protection);
  }

  async start(): Promise<void> {
    loopMonitor.start();
    await this.#role.listen();
    const url = `${this.#role.scheme}://${this.#opts.advertiseHost !== '' ? `${this.#opts.advertiseHost}:${this.#role.address.split(':').pop() ?? ''}` : this.#role.address}${DATA_LINK_PATH}`;
    this.#meta = new MetaMember(
      { ...this.#opts, hello: this.#hello(url), logger: this.#log },
      {
        table: (t) => {
          this.#onTable(t);
        },
        members: (m) => {
          this.#dataMembers = m.data;
          this.#sessionMembers = m.sessions;
          this.#membersKnown = true;
        },
        drain: () => {
          if (this.#draining !== 'no') return;
          this.#draining = 'draining';
          this.#log.info('draining: waiting for meta to move every slot away');
          this.#checkDrained();
        },
        serve: (peer) => {
          serveDataConsole(peer, this.server, this.#errors, this.#protection);
        },
      },
    );
    this.#meta.start();
    this.#log.info('data listening', { url: this.url });
  }

  /** Stops; with `phases` (a graceful stop) meta first moves every slot away, within their deadline. */
  async stop(phases?: ShutdownPhases): Promise<void> {
    const drained = (): boolean => this.#draining === 'drained';
    if (phases !== undefined) await this.#meta?.handOverBeforeStop(phases, 'data: hand slots over', drained);
    this.#stopped = true;
    this.#unregisterMetrics();
    this.#protection.unregister();
    this.#meta?.stop();
    this.#follower.stop();
    for (const cancel of this.#sessionGrace.values()) cancel();
    this.#sessionGrace.clear();
    loopMonitor.stop();
    this.server.close();
    await this.#role.close();
  }

  /** Meta has told us the sessions, and each of them is connected here. */
  #sessionsBack(): boolean {
    return this.#membersKnown && this.#sessionMembers.every((m) => this.#sessions.has(m.id));
  }

  #hello(url: string): LinkHello {
    return {
      role: 'data',
      id: this.#opts.id,
      url,
      protocolVersion: CLUSTER_PROTOCOL_VERSION,
      token: this.#opts.token,
    };
  }

  // ---- peers that connect to us -----------------------------------------------------------------

  #accept(peer: RpcPeer, hello: LinkHello): void {
    if (hello.role === 'session') this.#acceptSession(peer, hello.id, isLocal(hello));
    else this.#acceptFollower(peer);
  }

  #acceptSession(peer: RpcPeer, sessionId: string, local: boolean): void {
    const s = this.server;
    this.#sessionGrace.get(sessionId)?.();
    this.#sessionGrace.delete(sessionId);
    this.#protection.protection.recovered(sessionId);
    this.#sessions.get(sessionId)?.peer.terminate();
    this.#sessions.set(sessionId, { peer, id: sessionId });
    s.noteSessionConnected();
    // A session whose publishers went after its grace, or that this process never collected from
    // (a migration finished without it), may hold publishers of slots served here: restore them.
    const dropped = this.#dropped.delete(sessionId);
    if (dropped || !this.#migration.collectedFrom.has(sessionId))
      void this.#restoreFrom(sessionId, peer, dropped);
    const watch = s.watch(sessionId, {
      onChange: (changes) => peer.emit(DATA_LINK.changes, { changes }),
      onCatalogChange: (version) => peer.emit(DATA_LINK.catalog, { version }),
    });
    peer
      .handle(DATA_LINK.publish, async (p) => {
        this.#publishes += p.items.length;
        return { outcomes: (await tracedPublish(s, p)).value };
      })
      .handle(DATA_LINK.unpublish, async (p) => {
        return { outcomes: (await s.unpublish(p.items, p.epoch)).value };
      })
      .handle(DATA_LINK.dropOwner, (p) => s.dropOwner(p.owner))
      .handle(DATA_LINK.fetch, (p) => s.fetch(p.key))
      .handle(DATA_LINK.fetchCatalog, () => s.fetchCatalog())
      .handle(DATA_LINK.versions, async (p) => ({
        versions: Object.fromEntries(await s.versions(p.keys)),
      }))
      .handle(DATA_LINK.interest, (p) => {
        for (const k of p.add) watch.interest(k, true);
        for (const k of p.remove) watch.interest(k, false);
        if (p.catalog !== undefined) watch.catalogInterest(p.catalog);
      });
    void peer.closed.then(() => {
      watch.close();
      if (this.#sessions.get(sessionId)?.peer !== peer) return;
      this.#sessions.delete(sessionId);
      if (local) return;
      // The session may come back (a restart, a network blip); its agents may also re-register
      // elsewhere. What neither brought back within the grace period is gone.
      const cancel = liveTimeout(() => {
        this.#graceOver(sessionId);
      }, this.#opts.sessionGraceMs);
      this.#sessionGrace.set(sessionId, cancel);
    });
  }

  /** A session's grace ran out: its publishers go, unless too many sessions went at once. */
  #graceOver(sessionId: string): void {
    this.#sessionGrace.delete(sessionId);
    const p = this.#protection.protection;
    const population = this.#sessions.size + this.#sessionGrace.size + p.status().held.length + 1;
    if (p.admit(sessionId, population)) this.#dropSession(sessionId);
    else this.#log.warn('session did not come back; publishers held (protection mode)', { sessionId });
  }

  #dropSession(sessionId: string): void {
    this.#log.info('session did not come back; dropping its publishers', { sessionId });
    this.server.dropSession(sessionId);
    this.#dropped.add(sessionId);
    for (const old of this.#dropped) if (this.#dropped.size > MAX_DROPPED_SESSIONS) this.#dropped.delete(old);
  }

  /**
   * A session whose publishers we dropped came back after all (a partition longer than the grace, a
   * meta that misled it about us), or one this process never collected from (its migration finished
   * while the session was not listed or not connected, e.g. this server restarted and took back
   * slots nobody replicated): it still holds its publishers and will not re-send what it thinks
   * landed, so we collect them from it, as a new slot leader would.
   */
  async #restoreFrom(id: string, peer: RpcPeer, dropped: boolean): Promise<void> {
    let open = true;
    void peer.closed.then(() => {
      open = false;
    });
    const all = [...Array(this.#opts.slotCount).keys()];
    // A migration under way collects from the sessions it knew when it began: wait for its end,
    // then restore what it did not collect from this session.
    while (open && !this.#stopped && all.some((s) => this.server.slotState(s) === 'migrating'))
      await new Promise((r) => setTimeout(r, 100));
    if (!open || this.#stopped || (!dropped && this.#migration.collectedFrom.has(id))) return;
    const slots = all.filter((s) => this.server.slotState(s) === 'ready');
    // Nothing served yet: the migration that makes slots ready collects from this session.
    if (slots.length === 0) return;
    try {
      // A dropped session gives everything it still holds, as to a rebuild; one that was only never
      // collected from gives its open connections (what their agents hold now), never stale grace.
      const selection = { slots, slotCount: this.#opts.slotCount, ...(dropped ? {} : { openOnly: true }) };
      const items = await peer.callPaged(DATA_LINK.collect, selection);
      this.server.restore(items);
      this.#migration.collectedFrom.add(id);
      if (items.length > 0)
        this.#log.info('a session came back with publishers of slots served here; restored', {
          sessionId: id,
          count: items.length,
        });
    } catch (err) {
      this.#log.warn('could not collect from a returning session', { sessionId: id, err });
    }
  }

  #acceptFollower(peer: RpcPeer): void {
    peer.handlePaged(REPLICATION_LINK.replicate, ({ slots }) => {
      const mine = slots.filter((slot) => {
        const st = this.server.slotState(slot);
        return st === 'ready' || st === 'migrating';
      });
      this.#followers.set(peer, new Set(mine));
      const { store } = this.server;
      return mine.flatMap((slot) =>
        replicaItems(slot, store.exportSlot(slot), store.tombstones.inSlot(slot)),
      );
    });
    void peer.closed.then(() => this.#followers.delete(peer));
  }

  #replicate(op: ReplicationOp): void {
    for (const [peer, slots] of this.#followers) if (slots.has(op.slot)) peer.emit(REPLICATION_LINK.repl, op);
  }

  // ---- the slot table ---------------------------------------------------------------------------

  #onTable(table: SlotTable): void {
    const plan = this.server.applyTable(table);
    if (plan === undefined) return;
    this.#checkDrained();
    this.#follower.follow(plan.follow, this.#dataMembers);
    if (plan.migrate.length > 0) void this.#migration.run(plan.migrate);
  }

  /** A drained server has handed every slot over (meta moved them; the new leaders hold replicas). */
  #checkDrained(): void {
    if (this.#draining !== 'draining' || !this.server.holdsNoSlot()) return;
    this.#draining = 'drained';
    this.#log.info('drained: this server leads and follows no slot');
    this.#opts.onDrained?.();
  }
}

/**
 * The meta role: membership of data and session servers by lease, and the slot table.
 *
 * Members connect to the meta link, say hello, and heartbeat; a member whose lease runs out is
 * removed (a closed socket alone does not remove it: it may be reconnecting). After a warm-up that
 * lets the members of a restarted cluster come back, meta arranges the slots over the live data
 * servers, a bounded number of leader moves per round, and pushes every new table and member list
 * to every member. What must outlive the process (members, table, leadership) lives in a
 * {@link MetaStore}: in memory by default, or etcd, where several metas share it and only the elected
 * one assigns slots; every meta serves members and pushes them what the store holds.
 */
import type { Member, MemberRole } from '../../proto/cluster-records.js';
import { META_LINK, META_LINK_PATH, type DrainSelfAnswer, type MembersEvent } from '../../proto/meta-link.js';
import type { FederationConfig } from '../../proto/federation.js';
import type { HelloAnswer, MemberHello } from '../../proto/rpc.js';
import { MeshregError } from '../../proto/errors.js';
import type { Logger } from '../../proto/runtime/log.js';
import { loopMonitor } from '../../proto/runtime/loop-monitor.js';
import type { SlotTable } from '../../proto/slot-table.js';
import { ErrorRing } from '../console/error-ring.js';
import { MetaConsoleRole, type ConsoleOptions } from '../console/meta-console-host.js';
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
import { httpBase, metaAdminRoutes, registerMetaMetrics, type MemberView } from './meta-ops.js';
import type { MetaStore, SharedMember } from './meta-store.js';
import { MetaTable } from './meta-table.js';
import type { FederationStore } from '../federation/federation-config.js';
import { FederationBoard } from './federation-board.js';
import { SwitchBoard } from './switch-board.js';

export interface MetaNodeOptions extends RoleServerOptions {
  readonly leaseMs: number;
  readonly warmupMs: number;
  readonly arrangeIntervalMs: number;
  readonly slotCount: number;
  readonly followers: number;
  readonly maxLeaderMoves: number;
  readonly logger: Logger;
  /** Builds the store once the meta knows its own URL. */
  readonly store: (metaUrl: string) => MetaStore;
  /** Protection mode of member expiry (default: 15 % in 60 s, at least 1). */
  readonly protection?: ProtectionOptions;
  /** The console's settings (default {@link DEFAULT_CONSOLE}). */
  readonly console?: ConsoleOptions;
  /** The federation configuration at start (default: data center `dc1`, no peers). */
  readonly federation?: FederationConfig;
  /** Where federation edits are kept and where each peer came from (default: in memory only). */
  readonly federationStore?: FederationStore;
}

interface MemberRecord {
  readonly role: MemberRole;
  readonly url: string;
  peer: RpcPeer | undefined;
  /** In live time ({@link loopMonitor}): a stall of this meta never shortens a lease. */
  expiresAt: number;
  /** A role of this very process: it lives as long as the process, and has no lease to lose. */
  readonly local: boolean;
}

export class MetaNode {
  readonly #opts: MetaNodeOptions;
  readonly #server: RoleServer;
  /** Members connected to this meta (their links and leases). */
  readonly #members = new Map<string, MemberRecord>();
  /** Members of the whole cluster, as the store holds them. */
  #shared: ReadonlyMap<string, SharedMember> = new Map();
  #store: MetaStore | undefined;
  #storeReady = false;
  readonly #log: Logger;
  readonly #tables: MetaTable;
  /** Members being drained: left out of slot arrangement and of the session list agents get. */
  readonly #draining = new Set<string>();
  readonly switches: SwitchBoard;
  readonly federation: FederationBoard;
  readonly #unregisterMetrics: () => void;
  #arranging = false;
  #timer: NodeJS.Timeout | undefined;
  #warmTimer: NodeJS.Timeout | undefined;
  /** Holds member expiries when too many leases run out at once. */
  readonly #protection: RoleProtection;
  #expirations = 0;
  readonly #errors = new ErrorRing('meta', () => this.url);
  readonly #console: MetaConsoleRole;

  constructor(opts: MetaNodeOptions) {
    this.#opts = opts;
    this.#log = this.#errors.wrap(opts.logger.child({ role: 'meta' }));
    this.#tables = new MetaTable(opts, {
      logger: this.#log,
      store: () => this.#store,
      liveData: () =>
        [...this.#shared]
          .filter(([id, m]) => m.role === 'data' && !m.draining && !this.#draining.has(id))
          .map(([id]) => id),
      emit: (next) => {
        for (const m of this.#members.values()) m.peer?.emit(META_LINK.table, next);
      },
    });
    this.#protection = roleProtection(
      { role: 'meta', kind: 'members', id: () => this.url },
      opts.protection,
      this.#log,
      (id) => {
        this.#expire(id);
      },
    );
    this.#server = new RoleServer('meta', opts, this.#log, () =>
      withProtection(this.health(), this.#protection),
    ).link(META_LINK_PATH, (peer, hello) => this.#join(peer, hello));
    this.switches = new SwitchBoard((state) => {
      this.#log.info('switches changed', { ...state });
      for (const m of this.#members.values())
        if (m.role === 'session') m.peer?.emit(META_LINK.switches, state);
    });
    this.federation = new FederationBoard(
      opts.federation ?? { version: 0, datacenter: 'dc1', peers: [] },
      (config) => {
        this.#log.info('federation changed', {
          version: config.version,
          peers: this.federation.publicPeers(),
        });
        for (const m of this.#members.values())
          if (m.role === 'session') m.peer?.emit(META_LINK.federation, config);
      },
      opts.federationStore,
    );
    this.#console = new MetaConsoleRole({
      meta: this,
      peer: (id) => this.#members.get(id)?.peer,
      store: () => this.#store,
      revision: () => this.#tables.revision,
      protection: this.#protection,
      errors: this.#errors,
      ops: opts.ops,
      callTimeoutMs: opts.callTimeoutMs,
      options: opts.console,
      logger: this.#log,
    });
    this.#server
      .ops(this.#console.routes([...metaAdminRoutes(this), ...protectionRoutes(this.#protection)]))
      .extend(this.#console.events.extension());
    this.#unregisterMetrics = registerMetaMetrics(() => ({
      members: this.members(),
      table: this.#tables.current,
      expirations: this.#expirations,
    }));
  }

  /** The meta link of a member linked to this meta (the admin API asks sessions over it). */
  memberPeer(id: string): RpcPeer | undefined {
    return this.#members.get(id)?.peer;
  }

  /** Members with their lease and link state (the admin API). */
  members(): MemberView[] {
    const now = loopMonitor.liveNow();
    return [...this.#shared].map(([id, m]) => {
      const local = this.#members.get(id);
      return {
        id,
        role: m.role,
        url: m.url,
        http: httpBase(m.url),
        connected: local?.peer?.isOpen === true,
        leaseLeftMs:
          local === undefined ? 0 : local.local ? this.#opts.leaseMs : Math.max(0, local.expiresAt - now),
        draining: m.draining || this.#draining.has(id),
      };
    });
  }

  /**
   * Drains a member. A session is told to hand its agents to the other sessions and exits when
   * empty; a data server has its slots moved to their followers first and exits holding none.
   */
  drain(id: string): MemberView {
    const m = this.#shared.get(id);
    if (m === undefined) throw new MeshregError('not_found', `no member "${id}"`);
    const peers = [...this.#shared].filter(
      ([i, x]) => x.role === m.role && i !== id && !x.draining && !this.#draining.has(i),
    );
    if (peers.length === 0)
      throw new MeshregError(
        'invalid_argument',
        `id: "${id}" is the last ${m.role} server; nothing could take over`,
        {
          fields: [{ path: 'id', message: `is the last ${m.role} server` }],
        },
      );
    this.#draining.add(id);
    this.#log.info('draining member', { id, role: m.role });
    this.#members.get(id)?.peer?.emit(META_LINK.drain, { id });
    this.#store?.putMember(id, { role: m.role, url: m.url, draining: true });
    this.#broadcastMembers();
    if (m.role === 'data') this.#tick();
    const view = this.members().find((v) => v.id === id);
    if (view === undefined) throw new MeshregError('internal', 'member vanished');
    return view;
  }

  get url(): string {
    return this.#server.url(META_LINK_PATH);
  }

  get address(): string {
    return this.#server.address;
  }

  get table(): SlotTable | undefined {
    return this.#tables.current;
  }

  health(): Record<string, unknown> {
    const members = [...this.#shared].map(([id, m]) => ({
      id,
      role: m.role,
      url: m.url,
      connected: this.#members.get(id)?.peer?.isOpen === true,
    }));
    const store = this.#store;
    return {
      // Degraded: the store is unreachable; the cluster serves with the last table, nothing is reassigned.
      status: store === undefined || store.healthy ? 'ok' : 'degraded',
      store: store?.kind ?? 'none',
      leader: store?.leader === true,
      epoch: this.#tables.current?.epoch ?? 0,
      arranging: this.#arranging,
      members,
      slotTable: this.#tables.current,
    };
  }

  async start(): Promise<void> {
    loopMonitor.start();
    await this.#server.listen();
    const store = this.#opts.store(this.url);
    this.#store = store;
    await store.start({
      members: (m) => {
        this.#shared = new Map(m);
        this.#broadcastMembers();
      },
      table: (t, revision) => {
        this.#tables.adopt(t, revision);
      },
      leadership: (leader) => {
        clearTimeout(this.#warmTimer);
        this.#arranging = false;
        if (!leader) return;
        // A new leader first gives the members of a restarted cluster time to come back.
        this.#warmTimer = setTimeout(() => {
          this.#arranging = true;
          this.#tick();
        }, this.#opts.warmupMs);
        this.#warmTimer.unref();
      },
      health: (healthy) => {
        if (healthy) return;
        // Cut off from etcd, this meta cannot keep its members' keys alive: they re-join another meta
        // (the next listed URL) before their keys' lease runs out.
        // They are no longer this meta's to expire: a withdrawal would cost them their grace.
        for (const [id, m] of this.#members) {
          m.peer?.close('unavailable', 'meta cut off from its store');
          this.#members.delete(id);
          store.releaseMember(id);
        }
      },
    });
    this.#storeReady = true;
    this.#timer = setInterval(() => {
      this.#tick();
    }, this.#opts.arrangeIntervalMs);
    this.#timer.unref();
    this.#log.info('meta listening', { url: this.url });
  }

  async stop(): Promise<void> {
    this.#console.close();
    this.#unregisterMetrics();
    this.#protection.unregister();
    loopMonitor.stop();
    clearTimeout(this.#warmTimer);
    clearInterval(this.#timer);
    await this.#store?.close();
    await this.#server.close();
  }

  #join(peer: RpcPeer, hello: MemberHello): HelloAnswer {
    // Before its store answered, this meta knows no member: the empty list it would push would make
    // sessions drop every data link (and data servers, after their grace, those sessions' publishers).
    if (!this.#storeReady)
      throw new MeshregError('unavailable', 'meta is starting: its store has not answered');
    if (this.#store?.healthy === false)
      throw new MeshregError('unavailable', 'meta is cut off from its store');
    const old = this.#members.get(hello.id);
    if (old?.peer !== undefined && old.peer !== peer) old.peer.terminate();
    const rec: MemberRecord = {
      role: hello.role,
      url: hello.url,
      peer,
      expiresAt: loopMonitor.liveNow() + this.#opts.leaseMs,
      local: isLocal(hello),
    };
    this.#protection.protection.recovered(hello.id);
    this.#members.set(hello.id, rec);
    this.#store?.putMember(hello.id, {
      role: hello.role,
      url: hello.url,
      draining: this.#draining.has(hello.id),
    });
    peer.handle(META_LINK.heartbeat, () => {
      if (this.#members.get(hello.id) !== rec) return { epoch: this.#tables.current?.epoch ?? 0 };
      rec.expiresAt = loopMonitor.liveNow() + this.#opts.leaseMs;
      this.#protection.protection.recovered(hello.id);
      return { epoch: this.#tables.current?.epoch ?? 0 };
    });
    peer.handle(META_LINK.drainSelf, () => this.#drainSelf(hello.id));
    void peer.closed.then(() => {
      if (rec.peer === peer) rec.peer = undefined;
    });
    if (old === undefined)
      this.#log.info('member joined', { id: hello.id, role: hello.role, url: hello.url, local: rec.local });
    setImmediate(() => {
      const table = this.#tables.current;
      if (table !== undefined) peer.emit(META_LINK.table, table);
      if (hello.role === 'session') peer.emit(META_LINK.switches, this.switches.state);
      if (hello.role === 'session') peer.emit(META_LINK.federation, this.federation.state);
      if (this.#draining.has(hello.id)) peer.emit(META_LINK.drain, { id: hello.id });
      this.#console.joined(hello.role, peer);
      this.#broadcastMembers();
      if (hello.role === 'data') this.#tick();
    });
    return { leaseMs: this.#opts.leaseMs };
  }

  /** A member stopping asks to be drained: the same drain as the admin API's, as a value. */
  #drainSelf(id: string): DrainSelfAnswer {
    if (this.#draining.has(id)) return { draining: true, reason: 'already draining' };
    try {
      this.drain(id);
      return { draining: true, reason: '' };
    } catch (err) {
      if (err instanceof MeshregError) return { draining: false, reason: err.message };
      throw err;
    }
  }

  #tick(): void {
    // With the store unreachable nothing is decided: a member that looks silent may be fine.
    if (this.#store?.healthy === true) this.#expireSilent();
    if (this.#arranging && this.#store?.leader === true && this.#store.healthy) void this.#tables.arrange();
  }

  /**
   * Removes members whose lease ran out in live time (a stall of this meta extends every lease by
   * its length). A member of this process is never expired; protection mode may hold the rest.
   */
  #expireSilent(): void {
    const now = loopMonitor.liveNow();
    const protection = this.#protection.protection;
    for (const [id, m] of this.#members) {
      if (m.local || m.expiresAt > now || protection.isHeld(id)) continue;
      if (protection.admit(id, this.#members.size)) this.#expire(id);
    }
  }

  /** Removes a member whose lease ran out. */
  #expire(id: string): void {
    const m = this.#members.get(id);
    if (m === undefined) return;
    this.#members.delete(id);
    this.#draining.delete(id);
    m.peer?.terminate();
    this.#store?.deleteMember(id);
    this.#expirations++;
    this.#log.warn('member lease expired; removed', { id, role: m.role });
  }

  #broadcastMembers(): void {
    const ev: MembersEvent = { data: this.#list('data'), sessions: this.#list('session') };
    for (const m of this.#members.values()) m.peer?.emit(META_LINK.members, ev);
  }

  #list(role: MemberRole): Member[] {
    return [...this.#shared]
      .filter(([id, m]) => m.role === role && !(role === 'session' && (m.draining || this.#draining.has(id))))
      .map(([id, m]) => ({ id, url: m.url }))
      .sort((a, b) => a.id.localeCompare(b.id));
  }
}

/**
 * The meta role: membership of data and session servers by lease, and the slot table.
 *
 * Members connect to the meta link, say hello, and heartbeat; a member whose lease runs out is
 * removed (a closed socket alone does not remove it: it may be reconnecting). After a warm-up that
 * lets the members of a restarted cluster come back, meta arranges the slots over the live data
 * servers, a bounded number of leader moves per round, and pushes every new table and member list
 * to every member. This is the embedded store: one meta process holds the truth in memory.
 */
import type { LinkHello, Member, MembersEvent, MemberRole } from '../../proto/cluster-link.js';
import { META_LINK_PATH } from '../../proto/cluster-link.js';
import type { Logger } from '../../proto/log.js';
import type { SlotTable } from '../../proto/slot-table.js';
import { VersionClock } from '../../proto/version.js';
import { RoleServer } from '../link/role-server.js';
import type { RpcPeer } from '../link/rpc-peer.js';
import { arrangeSlots } from './slot-arranger.js';

export interface MetaNodeOptions {
  readonly host: string;
  readonly port: number;
  readonly token: string;
  readonly leaseMs: number;
  readonly warmupMs: number;
  readonly arrangeIntervalMs: number;
  readonly slotCount: number;
  readonly followers: number;
  readonly maxLeaderMoves: number;
  readonly callTimeoutMs: number;
  readonly maxFrameBytes: number;
  readonly logger: Logger;
}

interface MemberRecord {
  readonly role: MemberRole;
  readonly url: string;
  peer: RpcPeer | undefined;
  expiresAt: number;
}

export class MetaNode {
  readonly #opts: MetaNodeOptions;
  readonly #server: RoleServer;
  readonly #members = new Map<string, MemberRecord>();
  readonly #clock = new VersionClock();
  readonly #log: Logger;
  #table: SlotTable | undefined;
  #arranging = false;
  #timer: NodeJS.Timeout | undefined;
  #warmTimer: NodeJS.Timeout | undefined;

  constructor(opts: MetaNodeOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ role: 'meta' });
    this.#server = new RoleServer({
      role: 'meta',
      host: opts.host,
      port: opts.port,
      token: opts.token,
      maxFrameBytes: opts.maxFrameBytes,
      callTimeoutMs: opts.callTimeoutMs,
      logger: this.#log,
      health: () => this.health(),
    }).link(META_LINK_PATH, (peer, hello) => this.#join(peer, hello));
  }

  get url(): string {
    return this.#server.url(META_LINK_PATH);
  }

  get address(): string {
    return this.#server.address;
  }

  get table(): SlotTable | undefined {
    return this.#table;
  }

  health(): Record<string, unknown> {
    const members = [...this.#members].map(([id, m]) => ({
      id,
      role: m.role,
      url: m.url,
      connected: m.peer?.isOpen === true,
    }));
    return { epoch: this.#table?.epoch ?? 0, arranging: this.#arranging, members, slotTable: this.#table };
  }

  async start(): Promise<void> {
    await this.#server.listen();
    this.#warmTimer = setTimeout(() => {
      this.#arranging = true;
      this.#tick();
    }, this.#opts.warmupMs);
    this.#warmTimer.unref();
    this.#timer = setInterval(() => {
      this.#tick();
    }, this.#opts.arrangeIntervalMs);
    this.#timer.unref();
    this.#log.info('meta listening', { url: this.url });
  }

  async stop(): Promise<void> {
    clearTimeout(this.#warmTimer);
    clearInterval(this.#timer);
    await this.#server.close();
  }

  #join(peer: RpcPeer, hello: LinkHello): unknown {
    const old = this.#members.get(hello.id);
    if (old?.peer !== undefined && old.peer !== peer) old.peer.terminate();
    const rec: MemberRecord = {
      role: hello.role,
      url: hello.url,
      peer,
      expiresAt: Date.now() + this.#opts.leaseMs,
    };
    this.#members.set(hello.id, rec);
    peer.handle('heartbeat', () => {
      if (this.#members.get(hello.id) === rec) rec.expiresAt = Date.now() + this.#opts.leaseMs;
      return { epoch: this.#table?.epoch ?? 0 };
    });
    void peer.closed.then(() => {
      if (rec.peer === peer) rec.peer = undefined;
    });
    if (old === undefined)
      this.#log.info('member joined', { id: hello.id, role: hello.role, url: hello.url });
    setImmediate(() => {
      if (this.#table !== undefined) peer.emit('table', this.#table);
      this.#broadcastMembers();
      if (hello.role === 'data') this.#tick();
    });
    return { leaseMs: this.#opts.leaseMs };
  }

  #tick(): void {
    const now = Date.now();
    let changed = false;
    for (const [id, m] of this.#members) {
      if (m.expiresAt > now) continue;
      this.#members.delete(id);
      m.peer?.terminate();
      changed = true;
      this.#log.warn('member lease expired; removed', { id, role: m.role });
    }
    if (changed) this.#broadcastMembers();
    if (this.#arranging) this.#arrange();
  }

  #arrange(): void {
    const live = [...this.#members].filter(([, m]) => m.role === 'data').map(([id]) => id);
    const next = arrangeSlots(this.#table, live, {
      slotCount: this.#opts.slotCount,
      followers: this.#opts.followers,
      maxLeaderMoves: this.#table === undefined ? this.#opts.slotCount : this.#opts.maxLeaderMoves,
      nextEpoch: (prev) => this.#clock.next(prev),
    });
    if (next === undefined || next === this.#table) return;
    const moves = next.slots.filter(
      (sl, i) => this.#table?.slots[i]?.leader !== undefined && this.#table.slots[i]?.leader !== sl.leader,
    ).length;
    this.#table = next;
    const leaders = new Map<string, number>();
    for (const s of next.slots) leaders.set(s.leader, (leaders.get(s.leader) ?? 0) + 1);
    this.#log.info('slot table changed', {
      epoch: next.epoch,
      leaderMoves: moves,
      leaders: Object.fromEntries(leaders),
    });
    for (const m of this.#members.values()) m.peer?.emit('table', next);
  }

  #broadcastMembers(): void {
    const ev: MembersEvent = { data: this.#list('data'), sessions: this.#list('session') };
    for (const m of this.#members.values()) m.peer?.emit('members', ev);
  }

  #list(role: MemberRole): Member[] {
    return [...this.#members]
      .filter(([, m]) => m.role === role)
      .map(([id, m]) => ({ id, url: m.url }))
      .sort((a, b) => a.id.localeCompare(b.id));
  }
}

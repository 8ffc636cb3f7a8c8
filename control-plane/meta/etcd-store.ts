/**
 * Meta coordination on etcd. Keys under the prefix (default `/meshreg/`):
 *
 *   meta-leader/<leaseId>  one per meta campaigning (value: its URL), under that meta's election
 *                          lease (TTL `MESHREG_ETCD_LEASE_TTL_S`). The key with the lowest create
 *                          revision leads; that create revision is the leader's fencing token.
 *   members/<id>           {role, url, draining} of each data/session server, put by the meta it is
 *                          connected to under that meta's member lease (TTL twice the election's), so
 *                          a member that moves to another meta is re-put before the first lease runs out.
 *                          A key under an earlier lease of the same meta (the client gave that lease up
 *                          while etcd was away) is moved to its current lease.
 *   withdrawn/<id>         '' under the same member lease, put in the transaction that deletes
 *                          members/<id> when the member's heartbeats stopped: it left on purpose. A
 *                          member key that vanishes without it (a meta's lease ran out) is kept in the
 *                          member list for a grace of twice the TTL while the member re-joins.
 *   slot-table             the current table (JSON, with `writer: {url, token}` of the meta that wrote
 *                          it); written only in a transaction that requires the writer's election key to
 *                          have the create revision of its token AND the slot-table key to still have the
 *                          mod revision the writer arranged from (0: absent). A deposed or confused
 *                          leader's write fails.
 *
 * Every meta watches members/ and slot-table and pushes what it sees to its own members, so a member
 * may connect to any meta. A watch that etcd dropped is re-established within a probe interval, and
 * until it is, every probe that reaches etcd reads both again, so no meta serves a stale view for long
 * after etcd comes back; the leader reads both again right before it writes a table (see
 * {@link EtcdStore.refresh}). When etcd is unreachable nothing is decided: leadership is reported only
 * while verified (see {@link EtcdElection}), no member is withdrawn, the cluster serves with the last
 * table, and meta reports itself unhealthy (its owner then sends its members to another meta). A
 * member key is withdrawn or re-announced only while it is under this meta's lease: one that moved to
 * another meta is that meta's to keep.
 */
import { Etcd3, type Lease, type Watcher } from 'etcd3';
import type { Logger } from '../../proto/runtime/log.js';
import { liveTimeout, loopMonitor } from '../../proto/runtime/loop-monitor.js';
import { decodeSlotTable } from '../../proto/meta-link.js';
import type { SlotTable } from '../../proto/slot-table.js';
import { EtcdElection, type Leadership } from './etcd-election.js';
import { parseMember, probeInterval, watchBackoff } from './etcd-support.js';
import { MemberGrace } from './member-grace.js';
import type { MetaStore, MetaStoreEvents, SaveOutcome, SharedMember } from './meta-store.js';

/** Earlier member leases whose keys this meta still counts as its own. */
const PAST_LEASES_KEPT = 4;

export interface EtcdStoreOptions {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  /** This meta's URL: the value it campaigns with (what `leader` shows on /health). */
  readonly metaUrl: string;
  readonly leaseTtlS: number;
  readonly logger: Logger;
}

/** Who wrote a stored table: the meta's URL and its fencing token. */
export interface TableWriter {
  readonly url: string;
  readonly token: string;
}

export class EtcdStore implements MetaStore {
  readonly kind = 'etcd';
  readonly #opts: EtcdStoreOptions;
  readonly #client: Etcd3;
  readonly #election: EtcdElection;
  /** Members this meta announced and whose keys are (as far as it knows) under its lease. */
  readonly #own = new Map<string, SharedMember>();
  readonly #watchers: Watcher[] = [];
  /** Members whose key ran out with their meta's lease, kept while they re-join another meta. */
  readonly #grace: MemberGrace;
  #graceTimer: NodeJS.Timeout | undefined;
  #events: MetaStoreEvents | undefined;
  #lease: Lease | undefined;
  #leaseId: string | undefined;
  /** This meta's member leases granted before the current one: keys under them are still ours. */
  readonly #pastLeaseIds: string[] = [];
  /** Own members whose put failed (etcd briefly away): retried while etcd answers the probe. */
  readonly #unsaved = new Set<string>();
  /** Watches etcd dropped and the client has not re-established yet. */
  readonly #watchesDown = new Set<Watcher>();
  #healthy = true;
  #closed = false;
  #probe: NodeJS.Timeout | undefined;

  constructor(opts: EtcdStoreOptions) {
    this.#opts = opts;
    this.#client = new Etcd3({
      hosts: [...opts.endpoints],
      dialTimeout: 2000,
      // The default backoff grows to 30 s over an outage: views would stay stale long after etcd is back.
      faultHandling: { watchBackoff: watchBackoff(probeInterval(opts.leaseTtlS)) },
    });
    this.#grace = new MemberGrace(opts.leaseTtlS * 2 * 1000);
    this.#election = new EtcdElection({
      client: this.#client,
      prefix: this.#key('meta-leader/'),
      value: opts.metaUrl,
      ttlS: opts.leaseTtlS,
      logger: opts.logger,
      onChange: (lead) => void this.#leadershipChanged(lead),
    });
  }

  get leader(): boolean {
    return this.#election.current() !== undefined;
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  async start(events: MetaStoreEvents): Promise<void> {
    this.#events = events;
    loopMonitor.start();
    await this.refresh();
    const members = await this.#watch(this.#client.watch().prefix(this.#key('members/')), () =>
      this.#refreshMembers(),
    );
    const table = await this.#watch(this.#client.watch().key(this.#key('slot-table')), () =>
      this.#refreshTable(),
    );
    this.#watchers.push(members, table);
    this.#newLease();
    await this.#election.start();
    const probeMs = probeInterval(this.#opts.leaseTtlS);
    this.#probe = setInterval(() => void this.#checkHealth(probeMs), probeMs);
    this.#probe.unref();
  }

  /**
   * Reads the table and then the members from etcd (the members at a revision no older than the
   * table's), reporting both as the watches would; false when etcd could not be read.
   */
  async refresh(): Promise<boolean> {
    return (await this.#refreshTable()) && this.#refreshMembers();
  }

  putMember(id: string, member: SharedMember): void {
    this.#own.set(id, member);
    this.#unsaved.add(id);
    const lease = this.#lease;
    if (lease === undefined) return;
    Promise.all([
      this.#client
        .delete()
        .key(this.#key(`withdrawn/${id}`))
        .exec(),
      lease
        .put(this.#key(`members/${id}`))
        .value(JSON.stringify(member))
        .exec(),
    ]).then(
      () => {
        if (this.#own.get(id) === member) this.#unsaved.delete(id);
      },
      (err: unknown) => {
        this.#opts.logger.warn('could not store a member in etcd; will retry', { id, err });
      },
    );
  }

  deleteMember(id: string): void {
    this.#own.delete(id);
    this.#unsaved.delete(id);
    const key = this.#key(`members/${id}`);
    const leaseId = this.#leaseId;
    const lease = this.#lease;
    if (leaseId === undefined || lease === undefined) return;
    // Only while the key is ours: a member that moved to another meta is that meta's. The marker
    // tells every meta it left on purpose (no grace); it runs out with the member lease.
    this.#client
      .if(key, 'Lease', '==', leaseId)
      .then(this.#client.delete().key(key), lease.put(this.#key(`withdrawn/${id}`)).value(''))
      .commit()
      .catch((err: unknown) => {
        this.#opts.logger.warn('could not withdraw a member from etcd', { id, err });
      });
  }

  releaseMember(id: string): void {
    this.#own.delete(id);
    this.#unsaved.delete(id);
  }

  async saveTable(table: SlotTable, basedOn: string): Promise<SaveOutcome> {
    const lead = this.#election.current();
    if (lead === undefined) return 'not_leader';
    const writer: TableWriter = { url: this.#opts.metaUrl, token: lead.token };
    const key = this.#key('slot-table');
    try {
      const res = await this.#client
        .if(lead.key, 'Create', '==', lead.token)
        .and(key, 'Mod', '==', basedOn)
        .then(this.#client.put(key).value(JSON.stringify({ ...table, writer })))
        .commit();
      if (res.succeeded) return 'saved';
      this.#opts.logger.warn('slot table write fenced off', {
        epoch: table.epoch,
        token: lead.token,
        basedOn,
      });
      void this.#refreshTable();
      return 'fenced';
    } catch (err) {
      this.#opts.logger.warn('could not store the slot table in etcd', { err });
      return 'unreachable';
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    loopMonitor.stop();
    clearInterval(this.#probe);
    clearTimeout(this.#graceTimer);
    for (const w of this.#watchers) await w.cancel().catch(() => undefined);
    await this.#election.close();
    await this.#lease?.revoke().catch(() => undefined);
    this.#client.close();
  }

  #key(rest: string): string {
    return `${this.#opts.prefix}${rest}`;
  }

  /** Creates a watch whose every event (and every re-establishment) re-reads what it watches. */
  async #watch(builder: { create(): Promise<Watcher> }, reread: () => Promise<boolean>): Promise<Watcher> {
    const w = await builder.create();
    w.on('put', () => void reread());
    w.on('delete', () => void reread());
    w.on('disconnected', () => this.#watchesDown.add(w));
    w.on('connected', () => {
      this.#watchesDown.delete(w);
      void reread();
    });
    return w;
  }

  async #leadershipChanged(lead: Leadership | undefined): Promise<void> {
    if (lead === undefined) {
      this.#events?.leadership(false);
      return;
    }
    this.#opts.logger.info('elected meta leader', { url: this.#opts.metaUrl, token: lead.token });
    // The new leader arranges from the stored table (epochs keep growing from where they were) and
    // the stored members, read now: its watches may still be catching up after an outage.
    await this.refresh();
    if (this.#election.current()?.token === lead.token) this.#events?.leadership(true);
  }

  /** The lease of this meta's member keys; when lost (etcd away too long), a new one re-announces them. */
  #newLease(): void {
    if (this.#closed) return;
    const lease = this.#client.lease(this.#opts.leaseTtlS * 2);
    this.#lease = lease;
    // A lease the client gave up may still live in etcd (a restarted etcd renews every lease),
    // holding some of our members' keys for a while: they stay ours, to move to the new lease.
    if (this.#leaseId !== undefined) this.#pastLeaseIds.push(this.#leaseId);
    if (this.#pastLeaseIds.length > PAST_LEASES_KEPT) this.#pastLeaseIds.shift();
    this.#leaseId = undefined;
    lease.grant().then(
      (id) => {
        if (this.#lease === lease) this.#leaseId = id;
        void this.#reannounce();
      },
      () => undefined,
    );
    lease.on('lost', (err) => {
      this.#opts.logger.warn('etcd member lease lost; renewing', { err: err.message });
      lease.removeAllListeners();
      setTimeout(() => {
        if (this.#lease === lease) this.#newLease();
      }, 500).unref();
    });
  }

  /**
   * Puts each of this meta's members whose key is absent or still under one of this meta's earlier
   * leases (never over another meta's key).
   */
  async #reannounce(): Promise<void> {
    const lease = this.#lease;
    const leaseId = this.#leaseId;
    if (lease === undefined || leaseId === undefined) return;
    for (const [id, m] of this.#own) {
      const key = this.#key(`members/${id}`);
      try {
        const kv = (await this.#client.get(key).exec()).kvs[0];
        if (kv?.lease === leaseId) this.#unsaved.delete(id);
        if (kv !== undefined && !this.#pastLeaseIds.includes(kv.lease)) continue;
        const res = await this.#client
          .if(key, 'Mod', '==', kv?.mod_revision ?? '0')
          .then(lease.put(key).value(JSON.stringify(m)))
          .commit();
        if (res.succeeded) this.#unsaved.delete(id);
      } catch (err) {
        this.#opts.logger.warn('could not re-announce a member in etcd', { id, err });
      }
    }
  }

  /** Reads the members; true when etcd answered. */
  async #refreshMembers(): Promise<boolean> {
    try {
      const res = await this.#client.getAll().prefix(this.#key('members/')).exec();
      const withdrawn = await this.#client.getAll().prefix(this.#key('withdrawn/')).keys();
      const out = new Map<string, SharedMember>();
      let missing = this.#unsaved.size > 0;
      for (const kv of res.kvs) {
        const id = kv.key.toString().slice(this.#key('members/').length);
        const m = parseMember(kv.value.toString());
        if (m !== undefined) out.set(id, m);
        if (this.#leaseId === undefined || kv.lease === this.#leaseId || !this.#own.has(id)) continue;
        // Under an earlier lease of ours: to move to the current one.
        if (this.#pastLeaseIds.includes(kv.lease)) missing = true;
        // Under another lease after our put landed: the member now belongs to another meta. (Before
        // it landed, the key is the one its previous meta put; ours goes in when that one runs out.)
        else if (!this.#unsaved.has(id)) this.#own.delete(id);
      }
      for (const id of this.#own.keys()) if (!out.has(id)) missing = true;
      const gone = new Set(withdrawn.map((k) => k.slice(this.#key('withdrawn/').length)));
      this.#events?.members(this.#grace.update(out, gone));
      this.#armGrace();
      if (missing) await this.#reannounce();
      return true;
    } catch (err) {
      this.#opts.logger.warn('could not read members from etcd', { err });
      return false;
    }
  }

  /** Reads the members again when the first kept member's grace ends. */
  #armGrace(): void {
    clearTimeout(this.#graceTimer);
    const ms = this.#grace.nextExpiryMs();
    if (ms === undefined || this.#closed) return;
    this.#graceTimer = setTimeout(() => void this.#refreshMembers(), ms + 10);
    this.#graceTimer.unref();
  }

  /** Reads the slot table; true when etcd answered. */
  async #refreshTable(): Promise<boolean> {
    try {
      const res = await this.#client.get(this.#key('slot-table')).exec();
      const kv = res.kvs[0];
      if (kv === undefined) {
        this.#events?.table(undefined, '0');
        return true;
      }
      const t = decodeSlotTable(JSON.parse(kv.value.toString()) as unknown);
      if (t.ok) this.#events?.table(t.value, kv.mod_revision);
      else this.#opts.logger.error('the slot table in etcd does not decode; ignored', { errors: t.errors });
      return true;
    } catch (err) {
      this.#opts.logger.warn('could not read the slot table from etcd', { err });
      return false;
    }
  }

  async #checkHealth(timeoutMs: number): Promise<void> {
    let ok: boolean;
    let cancel = (): void => undefined;
    try {
      await Promise.race([
        this.#client.maintenance.status(),
        new Promise((_, reject) => {
          // Live time: a stall of this process is not etcd's silence.
          cancel = liveTimeout(() => reject(new Error('timeout')), timeoutMs);
        }),
      ]);
      ok = true;
    } catch {
      ok = false;
    } finally {
      cancel();
    }
    if (this.#closed) return;
    if (ok === this.#healthy) {
      // A watch still down, or a member put that failed: read (and re-announce) now, not when the
      // client next reconnects its watch.
      if (ok && (this.#watchesDown.size > 0 || this.#unsaved.size > 0)) await this.refresh();
      return;
    }
    this.#healthy = ok;
    this.#opts.logger[ok ? 'info' : 'error'](
      ok ? 'etcd reachable again' : 'etcd unreachable: coordination paused, serving with the last table',
    );
    this.#events?.health(ok);
    if (ok && (await this.refresh())) await this.#reannounce();
  }
}

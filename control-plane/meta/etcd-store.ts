/**
 * Meta coordination on etcd. Keys under the prefix (default `/meshreg/`):
 *
 *   meta-leader/<leaseId>  one per meta campaigning (value: its URL), under that meta's election
 *                          lease (TTL `MESHREG_ETCD_LEASE_TTL_S`). The key with the lowest create
 *                          revision leads; that create revision is the leader's fencing token.
 *   members/<id>           {role, url, draining} of each data/session server, put by the meta it is
 *                          connected to under that meta's member lease (TTL twice the election's), so
 *                          a member that moves to another meta is re-put before the first lease runs out.
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
 * may connect to any meta. When etcd is unreachable nothing is decided: leadership is reported only
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
import { isRecord } from '../../proto/validate.js';
import { EtcdElection, type Leadership } from './etcd-election.js';
import { MemberGrace } from './member-grace.js';
import type { MetaStore, MetaStoreEvents, SaveOutcome, SharedMember } from './meta-store.js';

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
  #healthy = true;
  #closed = false;
  #probe: NodeJS.Timeout | undefined;

  constructor(opts: EtcdStoreOptions) {
    this.#opts = opts;
    this.#client = new Etcd3({ hosts: [...opts.endpoints], dialTimeout: 2000 });
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
    await this.#refreshMembers();
    await this.#refreshTable();
    const members = await this.#client.watch().prefix(this.#key('members/')).create();
    members.on('put', () => void this.#refreshMembers());
    members.on('delete', () => void this.#refreshMembers());
    members.on('connected', () => void this.#refreshMembers());
    const table = await this.#client.watch().key(this.#key('slot-table')).create();
    table.on('put', () => void this.#refreshTable());
    table.on('delete', () => void this.#refreshTable());
    table.on('connected', () => void this.#refreshTable());
    this.#watchers.push(members, table);
    this.#newLease();
    await this.#election.start();
    const probeMs = Math.min(1000, Math.max(100, Math.floor((this.#opts.leaseTtlS * 1000) / 4)));
    this.#probe = setInterval(() => void this.#checkHealth(probeMs), probeMs);
    this.#probe.unref();
  }

  putMember(id: string, member: SharedMember): void {
    this.#own.set(id, member);
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
    ]).catch((err: unknown) => {
      this.#opts.logger.warn('could not store a member in etcd; will retry with the next lease', {
        id,
        err,
      });
    });
  }

  deleteMember(id: string): void {
    this.#own.delete(id);
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

  async #leadershipChanged(lead: Leadership | undefined): Promise<void> {
    if (lead === undefined) {
      this.#events?.leadership(false);
      return;
    }
    this.#opts.logger.info('elected meta leader', { url: this.#opts.metaUrl, token: lead.token });
    // The new leader arranges from the stored table (epochs keep growing from where they were).
    await this.#refreshTable();
    if (this.#election.current()?.token === lead.token) this.#events?.leadership(true);
  }

  /** The lease of this meta's member keys; when lost (etcd away too long), a new one re-announces them. */
  #newLease(): void {
    if (this.#closed) return;
    const lease = this.#client.lease(this.#opts.leaseTtlS * 2);
    this.#lease = lease;
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

  /** Puts each of this meta's members whose key is absent (never over another meta's key). */
  async #reannounce(): Promise<void> {
    const lease = this.#lease;
    if (lease === undefined) return;
    for (const [id, m] of this.#own) {
      const key = this.#key(`members/${id}`);
      await this.#client
        .if(key, 'Create', '==', 0)
        .then(lease.put(key).value(JSON.stringify(m)))
        .commit()
        .catch((err: unknown) => {
          this.#opts.logger.warn('could not re-announce a member in etcd', { id, err });
        });
    }
  }

  async #refreshMembers(): Promise<void> {
    try {
      const res = await this.#client.getAll().prefix(this.#key('members/')).exec();
      const withdrawn = await this.#client.getAll().prefix(this.#key('withdrawn/')).keys();
      const out = new Map<string, SharedMember>();
      let missing = false;
      for (const kv of res.kvs) {
        const id = kv.key.toString().slice(this.#key('members/').length);
        const m = parseMember(kv.value.toString());
        if (m !== undefined) out.set(id, m);
        // Under another lease: the member now belongs to another meta.
        if (this.#leaseId !== undefined && kv.lease !== this.#leaseId) this.#own.delete(id);
      }
      for (const id of this.#own.keys()) if (!out.has(id)) missing = true;
      const gone = new Set(withdrawn.map((k) => k.slice(this.#key('withdrawn/').length)));
      this.#events?.members(this.#grace.update(out, gone));
      this.#armGrace();
      if (missing) await this.#reannounce();
    } catch (err) {
      this.#opts.logger.warn('could not read members from etcd', { err });
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

  async #refreshTable(): Promise<void> {
    try {
      const res = await this.#client.get(this.#key('slot-table')).exec();
      const kv = res.kvs[0];
      if (kv === undefined) {
        this.#events?.table(undefined, '0');
        return;
      }
      const t = decodeSlotTable(JSON.parse(kv.value.toString()) as unknown);
      if (t.ok) this.#events?.table(t.value, kv.mod_revision);
      else this.#opts.logger.error('the slot table in etcd does not decode; ignored', { errors: t.errors });
    } catch (err) {
      this.#opts.logger.warn('could not read the slot table from etcd', { err });
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
    if (ok === this.#healthy || this.#closed) return;
    this.#healthy = ok;
    this.#opts.logger[ok ? 'info' : 'error'](
      ok ? 'etcd reachable again' : 'etcd unreachable: coordination paused, serving with the last table',
    );
    this.#events?.health(ok);
    if (ok) {
      await this.#refreshMembers();
      await this.#refreshTable();
      await this.#reannounce();
    }
  }
}

function parseMember(text: string): SharedMember | undefined {
  try {
    const o = JSON.parse(text) as unknown;
    if (!isRecord(o)) return undefined;
    const role = o['role'];
    const url = o['url'];
    if ((role !== 'data' && role !== 'session') || typeof url !== 'string') return undefined;
    return { role, url, draining: o['draining'] === true };
  } catch {
    return undefined;
  }
}

/**
 * Meta coordination on etcd. Key layout under the prefix (default `/meshreg/`):
 *
 *   meta-leader/…        etcd's election (etcd3 `Election`): the meta that holds it assigns slots
 *   members/<id>         {role, url, draining} of each data/session server, put by the meta it is
 *                        connected to under that meta's lease (a dead meta's members expire with it)
 *   slot-table           the current table (JSON); written only by the leader, in a transaction
 *                        that requires its election key to still exist (a deposed leader's write fails)
 *
 * Every meta watches members/ and slot-table and pushes what it sees to its own members, so a member
 * may connect to any meta. When etcd is unreachable nothing is decided: leadership lapses with its
 * lease, no member is withdrawn, and the cluster serves with the last table it has.
 */
import { Etcd3, type Campaign, type Lease, type Watcher } from 'etcd3';
import type { Logger } from '../../proto/runtime/log.js';
import { decodeSlotTable } from '../../proto/meta-link.js';
import type { SlotTable } from '../../proto/slot-table.js';
import { isRecord } from '../../proto/validate.js';
import type { MetaStore, MetaStoreEvents, SharedMember } from './meta-store.js';

export interface EtcdStoreOptions {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  /** This meta's URL: the value it campaigns with (what `leader` shows on /health). */
  readonly metaUrl: string;
  readonly leaseTtlS: number;
  readonly logger: Logger;
}

export class EtcdStore implements MetaStore {
  readonly kind = 'etcd';
  readonly #opts: EtcdStoreOptions;
  readonly #client: Etcd3;
  readonly #own = new Map<string, SharedMember>();
  readonly #watchers: Watcher[] = [];
  #events: MetaStoreEvents | undefined;
  #lease: Lease | undefined;
  #campaign: Campaign | undefined;
  #leader = false;
  #healthy = true;
  #closed = false;
  #probe: NodeJS.Timeout | undefined;

  constructor(opts: EtcdStoreOptions) {
    this.#opts = opts;
    this.#client = new Etcd3({ hosts: [...opts.endpoints], dialTimeout: 2000 });
  }

  get leader(): boolean {
    return this.#leader;
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  async start(events: MetaStoreEvents): Promise<void> {
    this.#events = events;
    await this.#refreshMembers();
    await this.#refreshTable();
    const members = await this.#client.watch().prefix(this.#key('members/')).create();
    members.on('put', () => void this.#refreshMembers());
    members.on('delete', () => void this.#refreshMembers());
    members.on('connected', () => void this.#refreshMembers());
    const table = await this.#client.watch().key(this.#key('slot-table')).create();
    table.on('put', () => void this.#refreshTable());
    table.on('connected', () => void this.#refreshTable());
    this.#watchers.push(members, table);
    this.#newLease();
    this.#runCampaign();
    this.#probe = setInterval(() => void this.#checkHealth(), 1000);
    this.#probe.unref();
  }

  putMember(id: string, member: SharedMember): void {
    this.#own.set(id, member);
    this.#lease
      ?.put(this.#key(`members/${id}`))
      .value(JSON.stringify(member))
      .exec()
      .catch((err: unknown) => {
        this.#opts.logger.warn('could not store a member in etcd; will retry with the next lease', {
          id,
          err,
        });
      });
  }

  deleteMember(id: string): void {
    this.#own.delete(id);
    this.#client
      .delete()
      .key(this.#key(`members/${id}`))
      .exec()
      .catch((err: unknown) => {
        this.#opts.logger.warn('could not withdraw a member from etcd', { id, err });
      });
  }

  async saveTable(table: SlotTable): Promise<boolean> {
    const campaign = this.#campaign;
    if (!this.#leader || campaign === undefined) return false;
    try {
      const leaderKey = await campaign.getCampaignKey();
      const res = await this.#client
        .if(leaderKey, 'Create', '>', 0)
        .then(this.#client.put(this.#key('slot-table')).value(JSON.stringify(table)))
        .commit();
      return res.succeeded;
    } catch (err) {
      this.#opts.logger.warn('could not store the slot table in etcd', { err });
      return false;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#probe);
    for (const w of this.#watchers) await w.cancel().catch(() => undefined);
    await this.#campaign?.resign().catch(() => undefined);
    await this.#lease?.revoke().catch(() => undefined);
    this.#client.close();
  }

  #key(rest: string): string {
    return `${this.#opts.prefix}${rest}`;
  }

  /** A lease for this meta's member keys; when lost (etcd away too long), a new one re-puts them. */
  #newLease(): void {
    if (this.#closed) return;
    const lease = this.#client.lease(this.#opts.leaseTtlS);
    this.#lease = lease;
    lease.on('lost', (err) => {
      this.#opts.logger.warn('etcd lease lost; renewing', { err: err.message });
      setTimeout(() => {
        if (this.#lease !== lease) return;
        this.#newLease();
        for (const [id, m] of this.#own) this.putMember(id, m);
      }, 500).unref();
    });
  }

  #runCampaign(): void {
    if (this.#closed) return;
    const campaign = this.#client
      .election(this.#key('meta-leader'), this.#opts.leaseTtlS)
      .campaign(this.#opts.metaUrl);
    this.#campaign = campaign;
    campaign.on('elected', () => {
      this.#opts.logger.info('elected meta leader', { url: this.#opts.metaUrl });
      void this.#refreshTable().then(() => {
        this.#leader = true;
        this.#events?.leadership(true);
      });
    });
    campaign.on('error', (err) => {
      const was = this.#leader;
      this.#leader = false;
      if (was) this.#events?.leadership(false);
      this.#opts.logger.warn('meta election campaign failed; campaigning again', { err: err.message });
      setTimeout(() => {
        if (this.#campaign === campaign) this.#runCampaign();
      }, 500).unref();
    });
  }

  async #refreshMembers(): Promise<void> {
    try {
      const all = await this.#client.getAll().prefix(this.#key('members/')).strings();
      const out = new Map<string, SharedMember>();
      for (const [k, v] of Object.entries(all)) {
        const m = parseMember(v);
        if (m !== undefined) out.set(k.slice(this.#key('members/').length), m);
      }
      this.#events?.members(out);
    } catch (err) {
      this.#opts.logger.warn('could not read members from etcd', { err });
    }
  }

  async #refreshTable(): Promise<void> {
    try {
      const raw = await this.#client.get(this.#key('slot-table')).string();
      if (raw === null) return;
      const t = decodeSlotTable(JSON.parse(raw) as unknown);
      if (t.ok) this.#events?.table(t.value);
      else this.#opts.logger.error('the slot table in etcd does not decode; ignored', { errors: t.errors });
    } catch (err) {
      this.#opts.logger.warn('could not read the slot table from etcd', { err });
    }
  }

  async #checkHealth(): Promise<void> {
    let ok: boolean;
    try {
      await Promise.race([
        this.#client.maintenance.status(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 1500).unref()),
      ]);
      ok = true;
    } catch {
      ok = false;
    }
    if (ok === this.#healthy) return;
    this.#healthy = ok;
    this.#opts.logger[ok ? 'info' : 'error'](
      ok ? 'etcd reachable again' : 'etcd unreachable: coordination paused, serving with the last table',
    );
    this.#events?.health(ok);
    if (ok) {
      await this.#refreshMembers();
      await this.#refreshTable();
      for (const [id, m] of this.#own) this.putMember(id, m);
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

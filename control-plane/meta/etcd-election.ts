/**
 * One meta's campaign in the etcd election of the metas: the algorithm of etcd's own election
 * (client/v3/concurrency), written here so that its states are ours to check.
 *
 * A campaign grants a lease, puts `<electionPrefix><leaseId>` (value: this meta's URL) under it, and
 * takes the key's create revision as its fencing token. It leads while that key is the one with the
 * lowest create revision under the prefix: verified with etcd when the key is put, on every change
 * under the prefix (a watch), and every quarter TTL. Leadership is reported only while it is verified
 * and the lease is known to be alive by wall-clock time (a keepalive answered less than a TTL ago;
 * wall time on purpose: a stall of this process does not stop etcd's clock).
 *
 * Exactly one campaign runs at a time. Each has a generation; a superseded one is cancelled (lease
 * released, listeners removed) and anything it still finishes is dropped by the generation check,
 * so it can never report "elected".
 *
 * States: campaigning → leader → campaigning … → closed (any → closed).
 */
import type { Etcd3, Lease, Watcher } from 'etcd3';
import type { Logger } from '../../proto/runtime/log.js';

/** Proof of leadership: the election key and its create revision (the fencing token). */
export interface Leadership {
  readonly key: string;
  readonly token: string;
}

export interface EtcdElectionOptions {
  readonly client: Etcd3;
  /** Full key prefix of the election, ending in `/`. */
  readonly prefix: string;
  /** What this meta campaigns with (its URL). */
  readonly value: string;
  readonly ttlS: number;
  readonly logger: Logger;
  /** Called whenever verified leadership starts (with its proof) or ends (`undefined`). */
  readonly onChange: (leadership: Leadership | undefined) => void;
}

export type ElectionState = 'campaigning' | 'leader' | 'closed';

const RETRY_MS = 500;

interface Attempt {
  readonly gen: number;
  readonly lease: Lease;
  key?: string;
  token?: string;
  /** Wall time until which the lease is known to be alive. */
  aliveUntil: number;
}

export class EtcdElection {
  readonly #opts: EtcdElectionOptions;
  #state: ElectionState = 'campaigning';
  #gen = 0;
  #attempt: Attempt | undefined;
  #watcher: Watcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;

  constructor(opts: EtcdElectionOptions) {
    this.#opts = opts;
  }

  get state(): ElectionState {
    return this.#state;
  }

  /** The proof of leadership, only while it is verified and the lease is alive. */
  current(): Leadership | undefined {
    const a = this.#attempt;
    if (this.#state !== 'leader' || a?.key === undefined || a.token === undefined) return undefined;
    if (Date.now() >= a.aliveUntil) return undefined;
    return { key: a.key, token: a.token };
  }

  async start(): Promise<void> {
    const w = await this.#opts.client.watch().prefix(this.#opts.prefix).create();
    w.on('delete', () => void this.#verify());
    w.on('put', () => void this.#verify());
    w.on('connected', () => void this.#verify());
    this.#watcher = w;
    this.#campaign();
    const everyMs = Math.max(100, Math.floor((this.#opts.ttlS * 1000) / 4));
    this.#timer = setInterval(() => void this.#verify(), everyMs);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    const a = this.#attempt;
    this.#to('closed', 'closing');
    this.#gen++;
    clearInterval(this.#timer);
    clearTimeout(this.#retry);
    await this.#watcher?.cancel().catch(() => undefined);
    // Resigning: the next meta need not wait for the lease to run out.
    if (a !== undefined) await a.lease.revoke().catch(() => undefined);
  }

  #to(next: ElectionState, reason: string): void {
    const from = this.#state;
    if (from === next || from === 'closed') return;
    this.#state = next;
    this.#opts.logger.info(`meta election ${from} -> ${next}`, { reason, url: this.#opts.value });
    switch (next) {
      case 'campaigning':
        if (from === 'leader') this.#opts.onChange(undefined);
        break;
      case 'leader': {
        const lead = this.current();
        if (lead !== undefined) this.#opts.onChange(lead);
        break;
      }
      case 'closed':
        if (from === 'leader') this.#opts.onChange(undefined);
        break;
      default: {
        const never: never = next;
        throw new Error(`unknown election state ${String(never)}`);
      }
    }
  }

  /** Starts a new campaign, cancelling the one before it. */
  #campaign(): void {
    if (this.#state === 'closed') return;
    this.#cancelAttempt();
    const gen = ++this.#gen;
    const lease = this.#opts.client.lease(this.#opts.ttlS);
    const a: Attempt = { gen, lease, aliveUntil: Date.now() + this.#opts.ttlS * 1000 };
    this.#attempt = a;
    // Answers come in the order keepalives were sent: each renews the lease from its send time.
    const sentAt: number[] = [];
    lease.on('keepaliveEstablished', () => (sentAt.length = 0));
    lease.on('keepaliveFired', () => sentAt.push(Date.now()));
    lease.on('keepaliveSucceeded', () => {
      const at = sentAt.shift();
      if (at !== undefined) a.aliveUntil = Math.max(a.aliveUntil, at + this.#opts.ttlS * 1000);
    });
    lease.on('lost', (err) => {
      this.#restart(gen, `lease lost: ${err.message}`);
    });
    void this.#enter(a);
  }

  async #enter(a: Attempt): Promise<void> {
    try {
      const leaseId = await a.lease.grant();
      const key = `${this.#opts.prefix}${leaseId}`;
      const res = await a.lease.put(key).value(this.#opts.value).exec();
      if (a.gen !== this.#gen) return;
      a.key = key;
      a.token = res.header.revision;
      this.#opts.logger.info('meta campaign entered', { key, token: a.token });
      await this.#verify();
    } catch (err) {
      this.#restart(a.gen, `could not enter the election: ${(err as Error).message}`);
    }
  }

  /** Leads iff our key is the one created first under the prefix; a vanished key starts over. */
  async #verify(): Promise<void> {
    const a = this.#attempt;
    if (a?.key === undefined || this.#state === 'closed') return;
    if (this.#state === 'leader' && Date.now() >= a.aliveUntil) {
      this.#to('campaigning', 'lease not confirmed alive within its TTL');
    }
    try {
      const first = await this.#opts.client
        .getAll()
        .prefix(this.#opts.prefix)
        .sort('Create', 'Ascend')
        .limit(1)
        .exec();
      // A closed or superseded campaign has another generation by now.
      if (a.gen !== this.#gen) return;
      const kv = first.kvs[0];
      if (kv?.key.toString() === a.key && kv.create_revision === a.token) {
        if (Date.now() < a.aliveUntil) this.#to('leader', 'our key is the oldest');
        return;
      }
      this.#to('campaigning', 'another key is older');
      const ours = await this.#opts.client.get(a.key).exec();
      if (a.gen !== this.#gen) return;
      if (ours.kvs[0]?.create_revision !== a.token) this.#restart(a.gen, 'our election key is gone');
    } catch (err) {
      this.#opts.logger.debug('could not verify meta leadership', { err: (err as Error).message });
    }
  }

  #restart(gen: number, reason: string): void {
    if (gen !== this.#gen || this.#state === 'closed') return;
    this.#opts.logger.warn('meta campaign ended; campaigning again', { reason });
    this.#to('campaigning', reason);
    this.#cancelAttempt();
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      this.#campaign();
    }, RETRY_MS);
    this.#retry.unref();
  }

  #cancelAttempt(): void {
    const a = this.#attempt;
    if (a === undefined) return;
    this.#attempt = undefined;
    this.#gen++;
    a.lease.removeAllListeners();
    // Revoked when etcd can be reached; otherwise it runs out by itself.
    a.lease.revoke().catch(() => undefined);
  }
}

/**
 * The session's subscription table: who subscribed to which service, what each was sent and
 * acknowledged, and which pushes are overdue. Pure bookkeeping, no I/O and no clock of its own: the
 * {@link PushDispatcher} fetches, encodes and writes, and asks this table what to re-send.
 *
 * The catalog is not in this table: it has its own subscriber set in the dispatcher, so no service
 * name can collide with it.
 */
import type { ErrorCode } from '../../proto/errors.js';

/** What the dispatcher needs of a connection. */
export interface PushTarget {
  readonly id: string;
  /** True for a protocol-2 connection: it may be sent `delta` frames (absent: protocol 1). */
  readonly deltas?: boolean;
  /** Writes a pre-encoded text frame; `written` runs once the socket has taken it. */
  send(frame: Buffer, written?: () => void): void;
  fail(code: ErrorCode, reason: string): void;
}

/** A subscriber of something pushed: the connection and the highest version it was sent. */
export interface Subscriber {
  readonly target: PushTarget;
  /** Highest version sent; -1 before the first push. */
  pushed: number;
}

/** A subscriber of one service: its pushes are acknowledged by version and re-sent until they are. */
export interface ServiceSub extends Subscriber {
  readonly key: string;
  acked: number;
  /**
   * When the last push was written to the socket; `undefined` while it is still queued there. The
   * ack clock starts at the write, not at the queueing: a push stuck behind a large backlog to a
   * slow consumer is not late, and re-sending it would only grow the backlog.
   */
  sentAt: number | undefined;
  retries: number;
  /** The last push sent was incomplete: later incomplete ones are sent too (see the dispatcher). */
  partial: boolean;
}

export interface PushStats {
  pushes: number;
  /** Of the pushes, how many were deltas (protocol 2). */
  deltas: number;
  retries: number;
  failures: number;
  subscriptions: number;
}

/** What a sweep found: pushes to write again, and subscribers out of retries (or of a frame). */
export interface Overdue {
  readonly resend: readonly ServiceSub[];
  readonly failed: readonly ServiceSub[];
}

export class SubscriptionTable {
  readonly #byKey = new Map<string, Map<string, ServiceSub>>();
  readonly #inflight = new Set<ServiceSub>();
  readonly #stats: PushStats;

  /** `stats` is shared with the dispatcher, which counts pushes in it. */
  constructor(stats: PushStats) {
    this.#stats = stats;
  }

  /** Pushes sent and not yet acknowledged. */
  get unacknowledged(): number {
    return this.#inflight.size;
  }

  /** Every service with at least one subscriber. */
  keys(): IterableIterator<string> {
    return this.#byKey.keys();
  }

  has(key: string): boolean {
    return this.#byKey.has(key);
  }

  subscribers(key: string): ReadonlyMap<string, ServiceSub> | undefined {
    return this.#byKey.get(key);
  }

  /** True when a subscriber of `key` was sent something older than `version`. */
  behind(key: string, version: number): boolean {
    for (const sub of this.#byKey.get(key)?.values() ?? []) if (sub.pushed < version) return true;
    return false;
  }

  /** Adds (or replaces) `target`'s subscription; true when `key` had no subscriber before. */
  add(target: PushTarget, key: string, knownVersion: number | undefined): boolean {
    let subs = this.#byKey.get(key);
    const first = subs === undefined;
    if (subs === undefined) {
      subs = new Map();
      this.#byKey.set(key, subs);
    }
    const old = subs.get(target.id);
    if (old === undefined) this.#stats.subscriptions++;
    // The new subscription replaces the old one, including its unacknowledged push: acks now reach
    // only the new one, so the old one must not be retried and fail the connection.
    else this.#inflight.delete(old);
    const known = knownVersion ?? -1;
    subs.set(target.id, { target, key, pushed: known, acked: known, sentAt: 0, retries: 0, partial: false });
    return first;
  }

  /** Removes `target`'s subscription; true when `key` lost its last subscriber. */
  remove(target: PushTarget, key: string): boolean {
    const subs = this.#byKey.get(key);
    const sub = subs?.get(target.id);
    if (subs === undefined || sub === undefined) return false;
    subs.delete(target.id);
    this.#inflight.delete(sub);
    this.#stats.subscriptions--;
    if (subs.size > 0) return false;
    this.#byKey.delete(key);
    return true;
  }

  ack(target: PushTarget, key: string, version: number): void {
    const sub = this.#byKey.get(key)?.get(target.id);
    if (sub === undefined) return;
    if (version > sub.acked) sub.acked = version;
    if (sub.acked >= sub.pushed) {
      sub.retries = 0;
      this.#inflight.delete(sub);
    }
  }

  /**
   * Forgets what `sub` was sent but did not acknowledge: it counts as holding what it acked, so the
   * next push starts from there. Its retries are kept (only an ack resets them).
   */
  rewind(sub: ServiceSub): void {
    sub.pushed = sub.acked;
    this.#inflight.delete(sub);
  }

  /** Records a push of `version` to `sub`, which now waits for its ack. */
  sent(sub: ServiceSub, version: number): void {
    sub.pushed = version;
    this.#stats.pushes++;
    this.#inflight.add(sub);
  }

  /**
   * The pushes whose ack is `ackTimeoutMs` late at `now`: each is re-sent up to `maxRetries` times
   * (counted here), then given up (no longer waited for). A key without a frame cannot be re-sent.
   */
  sweep(
    now: number,
    limits: { readonly ackTimeoutMs: number; readonly maxRetries: number },
    hasFrame: (key: string) => boolean,
  ): Overdue {
    const resend: ServiceSub[] = [];
    const failed: ServiceSub[] = [];
    for (const sub of [...this.#inflight]) {
      if (sub.sentAt === undefined || now - sub.sentAt < limits.ackTimeoutMs) continue;
      if (sub.retries >= limits.maxRetries || !hasFrame(sub.key)) {
        this.#inflight.delete(sub);
        this.#stats.failures++;
        failed.push(sub);
        continue;
      }
      sub.retries++;
      this.#stats.retries++;
      resend.push(sub);
    }
    return { resend, failed };
  }
}

/** A push frame: encoded once, written as is to every subscriber that is behind. */
export interface PushFrame {
  readonly version: number;
  readonly data: Buffer;
}

/**
 * The subscribers of the service catalog, one per connection at most, and its latest frame. Catalog
 * pushes are not acknowledged (see the dispatcher), so there is nothing to re-send here. The
 * dispatcher counts them in its stats.
 */
export class CatalogSubscribers {
  readonly #subs = new Map<string, Subscriber>();
  #frame: PushFrame | undefined;

  get size(): number {
    return this.#subs.size;
  }

  values(): IterableIterator<Subscriber> {
    return this.#subs.values();
  }

  /** Adds (or replaces) `target`'s subscription; says whether the target was not subscribed yet. */
  add(target: PushTarget, knownVersion: number | undefined): boolean {
    const added = !this.#subs.has(target.id);
    this.#subs.set(target.id, { target, pushed: knownVersion ?? -1 });
    return added;
  }

  /** Removes `target`'s subscription; false when it had none. The last one takes the frame along. */
  remove(target: PushTarget): boolean {
    if (!this.#subs.delete(target.id)) return false;
    if (this.#subs.size === 0) this.#frame = undefined;
    return true;
  }

  /** The frame of catalog `version`, encoded by `encode` only when the version changed. */
  frame(version: number, encode: () => string): PushFrame {
    if (this.#frame?.version === version) return this.#frame;
    const frame = { version, data: Buffer.from(encode()) };
    if (this.#subs.size > 0) this.#frame = frame;
    return frame;
  }
}

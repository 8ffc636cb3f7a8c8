/**
 * Protection mode (self-preservation): overload slows meshreg down, it never deletes what is alive.
 *
 * Every removal the control plane decides by silence — a member lease that ran out at meta, a
 * session that did not come back to a data server, an agent connection that did not come back to a
 * session — asks {@link Protection.admit} first. Within any window of `windowMs`, at most
 * `max(minRemovals, floor(population × maxRemovalPercent / 100))` such removals go through; the
 * others are held: kept as they are, listed, and reported. Many things falling silent at once is
 * far more often the registry's own trouble (a stall, a partition) than a real mass death, so it
 * keeps them, as Eureka does below 85 % of expected renewals.
 *
 * The mode ends on its own when every held item came back ({@link Protection.recovered}), or when
 * an operator releases it ({@link Protection.release}), which hands back exactly what is still held
 * so the caller removes it. A real deregistration (an unpublish, an agent's leave, a switched-off
 * client) never asks: it is not judged by silence.
 *
 * `minRemovals` (default 1) lets a small cluster still lose one thing per window: 15 % of two
 * members is zero, and a two-member cluster whose one peer died must not hold it for ever.
 */
import type { AdminProtection } from '../../proto/admin-api.js';
import type { Logger } from '../../proto/runtime/log.js';

export interface ProtectionOptions {
  /** Share of the population that may be removed by silence within one window (percent, 0..100). */
  readonly maxRemovalPercent: number;
  /** The sliding window the share is counted over (ms). */
  readonly windowMs: number;
  /** Removals any window allows, whatever the population. */
  readonly minRemovals: number;
}

/** Defaults: 15 % in 60 s, at least one. */
export const DEFAULT_PROTECTION: ProtectionOptions = Object.freeze({
  maxRemovalPercent: 15,
  windowMs: 60_000,
  minRemovals: 1,
});

/**
 * What a role reports of its protection (health, metrics, the admin API, which adds who it is):
 * held removals oldest first, removals in the current window, releases since start, the thresholds.
 */
export type ProtectionStatus = Omit<AdminProtection, 'role' | 'id' | 'kind' | 'removed'>;

export class Protection {
  readonly #kind: string;
  readonly #opts: ProtectionOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  /** Times of the removals admitted, oldest first (pruned to the window). */
  readonly #removals: number[] = [];
  /** Held IDs (insertion order: oldest first). */
  readonly #held = new Set<string>();
  #released = 0;
  #remove: (ids: readonly string[]) => void = () => undefined;

  /** `kind` names what is counted; `now` is monotonic milliseconds (injectable for tests). */
  constructor(
    kind: string,
    opts: ProtectionOptions,
    log: Logger,
    now: () => number = () => performance.now(),
  ) {
    this.#kind = kind;
    this.#opts = opts;
    this.#log = log;
    this.#now = now;
  }

  get active(): boolean {
    return this.#held.size > 0;
  }

  isHeld(id: string): boolean {
    return this.#held.has(id);
  }

  /**
   * Asks to remove `id`, judged dead by silence, out of a `population` (everything of its kind this
   * role knows, `id` included). True: remove it now (counted). False: it is held; the caller keeps it.
   * An ID already held stays held (it is not asked again until it recovers or is released).
   */
  admit(id: string, population: number): boolean {
    if (this.#held.has(id)) return false;
    const t = this.#now();
    this.#prune(t);
    if (this.#removals.length < this.budget(population)) {
      this.#removals.push(t);
      return true;
    }
    const wasActive = this.active;
    this.#held.add(id);
    if (!wasActive)
      this.#log.warn('protection mode: too many removals at once; holding them', {
        kind: this.#kind,
        id,
        population,
        removedInWindow: this.#removals.length,
        ...this.#opts,
      });
    else this.#log.info('protection mode: removal held', { kind: this.#kind, id, held: this.#held.size });
    return false;
  }

  /** Removals a window allows out of `population`. */
  budget(population: number): number {
    const share = Math.floor((Math.max(0, population) * this.#opts.maxRemovalPercent) / 100);
    return Math.max(this.#opts.minRemovals, share);
  }

  /** A held item came back (renewed, reconnected): no longer held. Returns whether it was held. */
  recovered(id: string): boolean {
    if (!this.#held.delete(id)) return false;
    this.#log.info('protection mode: held item came back', { kind: this.#kind, id, held: this.#held.size });
    if (!this.active)
      this.#log.warn('protection mode ended: every held item came back', { kind: this.#kind });
    return true;
  }

  /** Forgets a held item without counting it (it was deregistered for real, or replaced). */
  forget(id: string): void {
    this.#held.delete(id);
  }

  /** Sets what removes held items on a release (the owner of what is held). */
  onRelease(remove: (ids: readonly string[]) => void): void {
    this.#remove = remove;
  }

  /** The operator's release: removes every held item (through `onRelease`) and returns their IDs. */
  release(): string[] {
    const ids = [...this.#held];
    this.#held.clear();
    this.#released += ids.length;
    if (ids.length > 0)
      this.#log.warn('protection mode released by the operator; removing what was held', {
        kind: this.#kind,
        removing: ids.length,
      });
    this.#remove(ids);
    return ids;
  }

  status(): ProtectionStatus {
    this.#prune(this.#now());
    return {
      active: this.active,
      held: [...this.#held],
      removedInWindow: this.#removals.length,
      released: this.#released,
      ...this.#opts,
    };
  }

  #prune(t: number): void {
    while (this.#removals.length > 0 && (this.#removals[0] ?? t) <= t - this.#opts.windowMs)
      this.#removals.shift();
  }
}

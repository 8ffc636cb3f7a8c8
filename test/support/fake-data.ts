/**
 * An in-memory {@link DataApi} for unit tests of the session's side: it keeps publishers by
 * registration with their owner and version (so its default outcomes are the ones a data server
 * would give), records every call, and lets a test program per-item outcomes, whole-call failures,
 * delays and availability.
 */
import type {
  CatalogView,
  DataApi,
  DataWatch,
  DatumView,
  PublishItem,
  UnpublishItem,
} from '../../control-plane/link/data-api.js';
import type { MeshregError } from '../../proto/errors.js';
import { fail, ok, type Result } from '../../proto/result.js';
import type { PublishOutcome, UnpublishOutcome } from '../../proto/write-outcomes.js';

/** One recorded call. `bytes` is the JSON size of its items (what a link would carry). */
export type FakeCall =
  | {
      readonly method: 'publish';
      readonly owner: string;
      readonly items: readonly PublishItem[];
      readonly epoch: number;
      readonly bytes: number;
    }
  | {
      readonly method: 'unpublish';
      readonly items: readonly UnpublishItem[];
      readonly epoch: number;
      readonly bytes: number;
    }
  | { readonly method: 'dropOwner'; readonly owner: string };

/** A programmed outcome for one item, or undefined for the modelled one. */
export type Program<I, O> = (item: I, epoch: number) => O | undefined;

interface Held {
  readonly owner: string;
  readonly version: number;
  readonly key: string;
}

export class FakeData implements DataApi {
  readonly calls: FakeCall[] = [];
  /** registrationId → what is held. */
  readonly held = new Map<string, Held>();
  /** When false, every write call resolves to `unavailable`, as a down link does. */
  available = true;
  /** How long each write call takes, on `setTimeout` (mock timers drive it); 0 answers at once. */
  delayMs = 0;
  /** When set, write calls fail as a whole with this error (a call the server refused). */
  refuseWith: MeshregError | undefined;
  /** When set, write calls reject with this (a bug: a DataApi never rejects for expected failures). */
  throwWith: Error | undefined;
  publishProgram: Program<PublishItem, PublishOutcome> = () => undefined;
  unpublishProgram: Program<UnpublishItem, UnpublishOutcome> = () => undefined;

  constructor(readonly id: string) {}

  /** The recorded calls of one method. */
  callsOf<M extends FakeCall['method']>(method: M): Extract<FakeCall, { method: M }>[] {
    return this.calls.filter((c): c is Extract<FakeCall, { method: M }> => c.method === method);
  }

  publish(
    owner: string,
    items: readonly PublishItem[],
    epoch: number,
  ): Promise<Result<readonly PublishOutcome[]>> {
    this.calls.push({ method: 'publish', owner, items, epoch, bytes: jsonBytes(items) });
    return this.#answer(() => items.map((i) => this.publishProgram(i, epoch) ?? this.#store(owner, i)));
  }

  unpublish(items: readonly UnpublishItem[], epoch: number): Promise<Result<readonly UnpublishOutcome[]>> {
    this.calls.push({ method: 'unpublish', items, epoch, bytes: jsonBytes(items) });
    return this.#answer(() => items.map((i) => this.unpublishProgram(i, epoch) ?? this.#remove(i)));
  }

  dropOwner(owner: string): Promise<void> {
    this.calls.push({ method: 'dropOwner', owner });
    for (const [regId, h] of this.held) if (h.owner === owner) this.held.delete(regId);
    return Promise.resolve();
  }

  fetch(key: string): Promise<DatumView> {
    return Promise.resolve({ key, version: 0, complete: true, instances: [] });
  }

  fetchCatalog(): Promise<CatalogView> {
    return Promise.resolve({ version: 0, complete: true, services: {} });
  }

  versions(): Promise<ReadonlyMap<string, number>> {
    return Promise.resolve(new Map());
  }

  watch(): DataWatch {
    return { interest: () => undefined, catalogInterest: () => undefined, close: () => undefined };
  }

  /** Answers after the delay; the outcomes are computed then, as a server applies on arrival. */
  #answer<O>(outcomes: () => O[]): Promise<Result<readonly O[]>> {
    const answer = (): Result<readonly O[]> => {
      if (this.throwWith !== undefined) throw this.throwWith;
      if (!this.available) return fail('unavailable', `data server ${this.id} is not connected`);
      if (this.refuseWith !== undefined) return fail(this.refuseWith);
      return ok(outcomes());
    };
    const arrived = this.delayMs === 0 ? Promise.resolve() : new Promise((r) => setTimeout(r, this.delayMs));
    return arrived.then(answer);
  }

  #store(owner: string, item: PublishItem): PublishOutcome {
    const old = this.held.get(item.registrationId);
    if (old !== undefined && item.version < old.version) return 'stale';
    this.held.set(item.registrationId, { owner, version: item.version, key: item.instance.service });
    if (old === undefined || old.version !== item.version) return 'applied';
    return old.owner === owner ? 'unchanged' : 'owner-changed';
  }

  #remove(item: UnpublishItem): UnpublishOutcome {
    const old = this.held.get(item.registrationId);
    if (old === undefined) return 'absent';
    if (item.version < old.version) return 'stale';
    this.held.delete(item.registrationId);
    return 'removed';
  }
}

/** JSON bytes of `items` as the write path measures a call (each item plus a separator). */
export function jsonBytes(items: readonly unknown[]): number {
  let n = 0;
  for (const i of items) n += Buffer.byteLength(JSON.stringify(i)) + 1;
  return n;
}

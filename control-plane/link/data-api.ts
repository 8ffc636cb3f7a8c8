/**
 * What a data server offers to session servers. Sessions depend on this interface only; the data
 * server implements it, and a link client implements it for a data server in another process. It
 * lives in the link layer, below the roles, so that the session imports nothing of the data role.
 */
import type {
  CatalogView,
  DatumChange,
  DatumView,
  PublishItem,
  UnpublishItem,
} from '../../proto/cluster-records.js';
import type { Result } from '../../proto/result.js';
import type { PublishOutcome, UnpublishOutcome } from '../../proto/write-outcomes.js';

export type { CatalogView, DatumChange, DatumView, PublishItem, PublishOutcome, UnpublishItem };

/** Receives change notifications for the keys a session declared interest in. */
export interface ChangeListener {
  onChange(changes: readonly DatumChange[]): void;
  onCatalogChange(version: number): void;
}

export interface DataWatch {
  interest(key: string, on: boolean): void;
  catalogInterest(on: boolean): void;
  close(): void;
}

/** One session's watch as the serving side keeps it: its listener and what it declared. */
export interface SessionWatcher {
  readonly listener: ChangeListener;
  readonly keys: Set<string>;
  catalog: boolean;
}

export interface DataApi {
  readonly id: string;
  /**
   * Resolves to one outcome per item, in order; an item whose slot the server does not lead at
   * `epoch` (the caller's slot-table epoch) is `stale_epoch`. A call that got no answer resolves to
   * a failure that holds for every item (`unavailable`: link down, call timed out; or the code the
   * server refused the whole call with); it never rejects for those. `traceparent` is the trace the
   * write belongs to; its changes carry it on.
   */
  publish(
    owner: string,
    items: readonly PublishItem[],
    epoch: number,
    traceparent?: string,
  ): Promise<Result<readonly PublishOutcome[]>>;
  /** Like {@link publish}: one outcome per item, or a failure of the whole call. */
  unpublish(items: readonly UnpublishItem[], epoch: number): Promise<Result<readonly UnpublishOutcome[]>>;
  /** Removes every publisher still owned by `owner` (a connection that did not come back). */
  dropOwner(owner: string): Promise<void>;
  fetch(key: string): Promise<DatumView>;
  fetchCatalog(): Promise<CatalogView>;
  versions(keys: readonly string[]): Promise<ReadonlyMap<string, number>>;
  watch(sessionId: string, listener: ChangeListener): DataWatch;
}

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
import type { PublishOutcome } from '../../proto/data-link.js';

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
   * `epoch` is the caller's slot-table epoch; a server that does not lead the slot refuses
   * (stale_epoch). `traceparent` is the trace the write belongs to; its changes carry it on.
   */
  publish(
    owner: string,
    items: readonly PublishItem[],
    epoch: number,
    traceparent?: string,
  ): Promise<PublishOutcome[]>;
  unpublish(items: readonly UnpublishItem[], epoch: number): Promise<void>;
  /** Removes every publisher still owned by `owner` (a connection that did not come back). */
  dropOwner(owner: string): Promise<void>;
  fetch(key: string): Promise<DatumView>;
  fetchCatalog(): Promise<CatalogView>;
  versions(keys: readonly string[]): Promise<ReadonlyMap<string, number>>;
  watch(sessionId: string, listener: ChangeListener): DataWatch;
}

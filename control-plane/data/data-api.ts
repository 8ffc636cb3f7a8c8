/**
 * What a data server offers to session servers. Sessions depend on this interface only, so the same
 * session code talks to a data server in its own process or, through a client, in another one.
 */
import type { Instance } from '../../proto/instance.js';
import type { PublishOutcome } from './datum-store.js';

export interface PublishItem {
  readonly registrationId: string;
  readonly instance: Instance;
  readonly version: number;
}

export interface UnpublishItem {
  readonly key: string;
  readonly registrationId: string;
  readonly version: number;
}

/** A datum as served to sessions. */
export interface DatumView {
  readonly key: string;
  readonly version: number;
  /** False while the data server is still rebuilding after a restart or takeover. */
  readonly complete: boolean;
  readonly instances: readonly Instance[];
}

export interface CatalogView {
  readonly version: number;
  readonly complete: boolean;
  readonly services: Readonly<Record<string, readonly string[]>>;
}

export interface DatumChange {
  readonly key: string;
  readonly version: number;
}

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

export interface DataApi {
  readonly id: string;
  publish(owner: string, items: readonly PublishItem[]): Promise<PublishOutcome[]>;
  unpublish(items: readonly UnpublishItem[]): Promise<void>;
  /** Removes every publisher still owned by `owner` (a connection that did not come back). */
  dropOwner(owner: string): Promise<void>;
  fetch(key: string): Promise<DatumView>;
  fetchCatalog(): Promise<CatalogView>;
  versions(keys: readonly string[]): Promise<ReadonlyMap<string, number>>;
  watch(sessionId: string, listener: ChangeListener): DataWatch;
}

/**
 * The narrow view of the agent that the xDS layer depends on. The agent implements it from its
 * local cache of watched services; tests implement it in memory.
 */
import type { Instance } from '../../proto/instance.js';

/**
 * One service as the agent currently sees it. Immutable: a change is a new object.
 * `version` only grows for a service; 0 means the agent has no view of it yet (the xDS layer then
 * withholds the service's resources instead of announcing an empty endpoint list).
 */
export interface ServiceSnapshot {
  readonly service: string;
  readonly version: number;
  readonly instances: readonly Instance[];
  /** Instances being drained before removal, by `registrationId` (`nodeId/id`) or bare `id`. */
  readonly deregistering?: ReadonlySet<string>;
  /**
   * The copies of the service that federated data centers export to this one, by data center
   * name; present only when asked for with `{ remote: true }` (scope `global`).
   */
  readonly remote?: readonly RemoteServiceSnapshot[];
}

/** Another data center's copy of a service, kept apart from the local one (invariant 8). */
export interface RemoteServiceSnapshot {
  readonly datacenter: string;
  readonly instances: readonly Instance[];
  /** As in {@link ServiceSnapshot.deregistering}. */
  readonly deregistering?: ReadonlySet<string>;
  /** The link to that data center is down: this is the last copy known (still served). */
  readonly stale?: boolean;
}

/** What a snapshot should include beyond the local data center's instances. */
export interface SnapshotOptions {
  /** Include the copies of every data center that exports the service here. */
  readonly remote?: boolean;
}

/** What the xDS layer needs from the agent; reads never touch the network (invariant 4). */
export interface EndpointSource {
  /**
   * Current view of `service` without touching the network; starts watching it (and, with
   * `remote`, each exporting data center's copy) if it was not watched.
   */
  snapshot(service: string, options?: SnapshotOptions): ServiceSnapshot;
  /**
   * Calls listener(service) after any change of a service's snapshot, remote copies included
   * (reported under the plain service name); returns an unsubscribe function.
   */
  onChange(listener: (service: string) => void): () => void;
  /** Zone/region of this agent: the caller's locality when its node gives none. */
  readonly locality: { readonly zone: string; readonly region: string };
}

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
}

/** What the xDS layer needs from the agent; reads never touch the network (invariant 4). */
export interface EndpointSource {
  /** Current view of `service` without touching the network; starts watching it if it was not watched. */
  snapshot(service: string): ServiceSnapshot;
  /** Calls listener(service) after any change of a service's snapshot; returns an unsubscribe function. */
  onChange(listener: (service: string) => void): () => void;
  /** Zone/region of this agent, to put local-zone endpoints at priority 0. */
  readonly locality: { readonly zone: string; readonly region: string };
}

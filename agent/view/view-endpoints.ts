/**
 * The agent's view as the xDS layer sees it ({@link EndpointSource}): a service's snapshot is the
 * local view (pushed instances plus the host's own), versioned by the view's modify index.
 */
import type { EndpointSource, ServiceSnapshot } from '../eds/endpoint-source.js';
import { MeshregError } from '../../proto/errors.js';
import type { ServiceView, WatchedService } from './service-view.js';

export class ViewEndpoints implements EndpointSource {
  readonly #listeners = new Set<(service: string) => void>();

  constructor(
    private readonly view: ServiceView,
    readonly locality: { readonly zone: string; readonly region: string },
    private readonly hasLocal: (service: string) => boolean,
  ) {}

  snapshot(service: string): ServiceSnapshot {
    const entry = this.#watch(service);
    // With nothing pushed yet and nothing local, there is no view: xDS withholds the resource.
    const known = entry?.received === true || this.hasLocal(service);
    const instances = this.view.instances(service);
    const draining = new Set(instances.filter((i) => i.draining === true).map((i) => `${i.nodeId}/${i.id}`));
    return {
      service,
      version: known ? (entry?.modifyIndex ?? this.view.index) : 0,
      instances,
      ...(draining.size > 0 ? { deregistering: draining } : {}),
    };
  }

  /** The service's watch, or undefined when the watch limit is reached and every watch is in use. */
  #watch(service: string): WatchedService | undefined {
    try {
      return this.view.ensure(service);
    } catch (err) {
      if (err instanceof MeshregError && err.code === 'rate_limited') return undefined;
      throw err;
    }
  }

  onChange(listener: (service: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Called by the agent on every change of a service's view. */
  changed(service: string): void {
    for (const l of this.#listeners) l(service);
  }
}

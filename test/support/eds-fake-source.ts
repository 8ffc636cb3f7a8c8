/**
 * An in-memory EndpointSource for tests: the production interface, driven by the test.
 */
import type { EndpointSource, ServiceSnapshot } from '../../agent/eds/endpoint-source.js';
import type { Instance } from '../../proto/instance.js';

/** Builds an instance with defaults a test can override. */
export function fakeInstance(overrides: Partial<Instance> & Pick<Instance, 'id'>): Instance {
  return {
    service: 'web',
    nodeId: 'node-1',
    node: 'host-1',
    nodeAddress: '10.0.0.1',
    address: '',
    port: 8080,
    tags: [],
    meta: {},
    weights: { passing: 1, warning: 1 },
    health: 'passing',
    checks: [],
    zone: 'z1',
    region: 'r1',
    ...overrides,
  };
}

/** A fake agent view: `set` replaces a service and notifies listeners, as the agent would. */
export class FakeEndpointSource implements EndpointSource {
  readonly locality: { readonly zone: string; readonly region: string };
  readonly watched = new Set<string>();
  readonly #services = new Map<string, ServiceSnapshot>();
  readonly #listeners = new Set<(service: string) => void>();

  constructor(locality: { zone: string; region: string } = { zone: 'z1', region: 'r1' }) {
    this.locality = locality;
  }

  snapshot(service: string): ServiceSnapshot {
    this.watched.add(service);
    return this.#services.get(service) ?? { service, version: 0, instances: [] };
  }

  onChange(listener: (service: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Replaces a service's instances (bumping its version) and notifies listeners. */
  set(service: string, instances: readonly Instance[], deregistering?: ReadonlySet<string>): void {
    const version = (this.#services.get(service)?.version ?? 0) + 1;
    this.#services.set(service, {
      service,
      version,
      instances,
      ...(deregistering === undefined ? {} : { deregistering }),
    });
    for (const listener of this.#listeners) listener(service);
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }
}

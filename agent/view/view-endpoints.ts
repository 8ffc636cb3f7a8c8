/**
 * The agent's view as the xDS layer sees it ({@link EndpointSource}): a service's snapshot is the
 * local view (pushed instances plus the host's own), versioned by the view's modify index. Asked
 * for remote copies (a caller of scope `global`), it adds the copy of each federated data center
 * that exports the service here, watched under its qualified key (`web@dc2`) and kept apart.
 */
import type {
  EndpointSource,
  RemoteServiceSnapshot,
  ServiceSnapshot,
  SnapshotOptions,
} from '../eds/endpoint-source.js';
import { isRemoteKey, remoteKey, splitKey } from '../../proto/datacenter.js';
import { MeshregError } from '../../proto/errors.js';
import type { Instance } from '../../proto/instance.js';
import type { FederationView } from '../federation-view.js';
import type { ServiceView, WatchedService } from './service-view.js';

export class ViewEndpoints implements EndpointSource {
  readonly #listeners = new Set<(service: string) => void>();

  /**
   * `federation` says which data centers export which services here; without it snapshots hold
   * local instances only.
   */
  constructor(
    private readonly view: ServiceView,
    readonly locality: { readonly zone: string; readonly region: string },
    private readonly hasLocal: (service: string) => boolean,
    private readonly federation?: FederationView,
  ) {
    // A peer that starts or stops exporting changes what `global` callers see of any service.
    federation?.onChange(() => {
      for (const w of this.view.watched()) if (!isRemoteKey(w.service)) this.changed(w.service);
    });
  }

  /**
   * The version is the greatest modify index among the parts included: the view's index is one
   * counter for the whole agent, so a change of any part raises it.
   */
  snapshot(service: string, options?: SnapshotOptions): ServiceSnapshot {
    const entry = this.#watch(service);
    // With nothing pushed yet and nothing local, there is no view: xDS withholds the resource.
    const known = entry?.received === true || this.hasLocal(service);
    const instances = this.view.instances(service);
    const draining = drainingOf(instances);
    let version = known ? (entry?.modifyIndex ?? this.view.index) : 0;
    const remote: RemoteServiceSnapshot[] = [];
    if (options?.remote === true && this.federation !== undefined) {
      for (const datacenter of this.federation.exporting(service)) {
        const part = this.#watch(remoteKey(service, datacenter));
        // Not received yet: nothing to add (an empty copy is not a copy).
        if (part?.received !== true) continue;
        const copy = this.view.instances(part.service);
        const partDraining = drainingOf(copy);
        remote.push({
          datacenter,
          instances: copy,
          ...(partDraining.size > 0 ? { deregistering: partDraining } : {}),
          ...(this.federation.peer(datacenter)?.linked === false ? { stale: true } : {}),
        });
        version = Math.max(version, part.modifyIndex);
      }
    }
    return {
      service,
      version,
      instances,
      ...(draining.size > 0 ? { deregistering: draining } : {}),
      ...(options?.remote === true ? { remote } : {}),
    };
  }

  /** The key's watch, or undefined when the watch limit is reached and every watch is in use. */
  #watch(key: string): WatchedService | undefined {
    try {
      return this.view.ensure(key);
    } catch (err) {
      if (err instanceof MeshregError && err.code === 'rate_limited') return undefined;
      throw err;
    }
  }

  onChange(listener: (service: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Called by the agent on every change of a watched key's view; a remote copy (`web@dc2`) is
   * reported as a change of its service.
   */
  changed(key: string): void {
    const { service } = splitKey(key);
    for (const l of this.#listeners) l(service);
  }
}

function drainingOf(instances: readonly Instance[]): Set<string> {
  return new Set(instances.filter((i) => i.draining === true).map((i) => `${i.nodeId}/${i.id}`));
}

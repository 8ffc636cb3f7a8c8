/**
 * What Consul reads need to know of data centers: which exist (the agent's own and the federated
 * peers its session reported), whether a peer's copies are current, and a modify index of that
 * knowledge so that `?dc=PEER` on `/v1/catalog/services` blocks like any read. An unknown data
 * center is answered as Consul does: HTTP 500, plain text "No path to datacenter".
 */
import { NO_PATH_TO_DATACENTER } from '../../proto/datacenter.js';
import type { JsonAnswer } from '../../proto/runtime/json-router.js';
import type { FederationView } from '../federation-view.js';
import { ChangeSignal } from '../view/change-signal.js';
import type { ServiceView } from '../view/service-view.js';

export class DatacenterReads {
  readonly federation: FederationView;
  #modifyIndex: number;
  readonly #changed = new ChangeSignal();

  /** Follows `federation`; each change raises `view`'s index, so reads of it block on one index space. */
  constructor(federation: FederationView, view: ServiceView) {
    this.federation = federation;
    this.#modifyIndex = view.index;
    federation.onChange(() => {
      this.#modifyIndex = view.touch();
      this.#changed.wake();
    });
  }

  get local(): string {
    return this.federation.local;
  }

  /** The index of the last change of the known data centers. */
  get modifyIndex(): number {
    return this.#modifyIndex;
  }

  /** Resolves on the next change of the known data centers, after `timeoutMs`, or on abort. */
  waitForChange(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.#changed.wait(timeoutMs, signal);
  }

  /**
   * Seconds since `datacenter`'s copies were last synced when they are not current (its link is
   * down), else undefined. The local data center is never stale for this reason.
   */
  staleAgeSec(datacenter: string, now = Date.now()): number | undefined {
    const p = this.federation.peer(datacenter);
    if (p === undefined || p.linked) return undefined;
    return p.syncedAt === undefined ? 0 : Math.max(0, Math.floor((now - p.syncedAt) / 1000));
  }
}

/** Consul's answer for a data center it has no route to. */
export function noPathToDatacenter(): JsonAnswer {
  return {
    status: 500,
    text: NO_PATH_TO_DATACENTER,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
  };
}

/**
 * The data center a read names (`?dc=`, undefined for the local one), checked: its name, or
 * Consul's 500 answer when it is neither the local one nor a known peer.
 */
export function resolveDatacenter(
  reads: DatacenterReads | undefined,
  local: string,
  dc: string | undefined,
): { readonly datacenter: string; readonly remote: boolean } | JsonAnswer {
  if (dc === undefined || dc === local) return { datacenter: local, remote: false };
  if (reads?.federation.peer(dc) === undefined) return noPathToDatacenter();
  return { datacenter: dc, remote: true };
}

/** Combines the agent's own offline age and a peer's staleness into one `Age`, or undefined when fresh. */
export function combineAge(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

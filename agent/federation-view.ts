/**
 * What the agent knows of data centers: its own, and the federated peers its session reported in
 * the last `datacenters` frame (their link state, when they last synced, which services they export
 * here). Reads use it to answer `?dc=`, `/v1/catalog/datacenters`, scope `global` and xDS priority 2,
 * and to mark another data center's copies stale. It is kept in the disk cache, so an agent that
 * starts offline still knows its peers.
 */
import type { Datacenters } from '../proto/agent-link.js';

/** One federated data center as the agent knows it. */
export interface PeerState {
  readonly name: string;
  /** The session's link to it was up when last reported. */
  readonly linked: boolean;
  /** Agent wall-clock time of its last sync (the frame's arrival less its age); undefined: never. */
  readonly syncedAt: number | undefined;
  /** Services it exports to this data center. */
  readonly services: ReadonlySet<string>;
}

/** The form kept on disk. */
export interface SavedFederation {
  readonly peers: readonly {
    readonly name: string;
    readonly syncedAt: number | null;
    readonly services: readonly string[];
  }[];
}

export class FederationView {
  readonly local: string;
  #peers = new Map<string, PeerState>();
  /** Whether a frame arrived since start (before that, peers come from disk: never linked). */
  #reported = false;
  readonly #listeners = new Set<() => void>();

  constructor(local: string) {
    this.local = local;
  }

  /** Takes a `datacenters` frame received at `receivedAt` (agent wall clock). False if nothing changed. */
  apply(frame: Datacenters, receivedAt: number): boolean {
    const next = new Map<string, PeerState>();
    for (const p of frame.peers) {
      if (p.name === this.local) continue;
      next.set(p.name, {
        name: p.name,
        linked: p.linked,
        syncedAt: p.ageMs < 0 ? this.#peers.get(p.name)?.syncedAt : receivedAt - p.ageMs,
        services: new Set(p.services),
      });
    }
    const changed = !this.#reported || !samePeers(this.#peers, next);
    this.#reported = true;
    this.#peers = next;
    if (changed) for (const l of this.#listeners) l();
    return changed;
  }

  /** Restores what was saved on disk (before any frame arrived): every peer counts as not linked. */
  restore(saved: SavedFederation): void {
    if (this.#reported) return;
    this.#peers = new Map(
      saved.peers
        .filter((p) => p.name !== this.local)
        .map((p) => [
          p.name,
          {
            name: p.name,
            linked: false,
            syncedAt: p.syncedAt ?? undefined,
            services: new Set(p.services),
          },
        ]),
    );
  }

  toSaved(): SavedFederation {
    return {
      peers: [...this.#peers.values()].map((p) => ({
        name: p.name,
        syncedAt: p.syncedAt ?? null,
        services: [...p.services].sort(),
      })),
    };
  }

  /** Every known data center, the local one first, then the peers by name. */
  known(): string[] {
    return [this.local, ...[...this.#peers.keys()].sort()];
  }

  isKnown(datacenter: string): boolean {
    return datacenter === this.local || this.#peers.has(datacenter);
  }

  peer(datacenter: string): PeerState | undefined {
    return this.#peers.get(datacenter);
  }

  peers(): PeerState[] {
    return [...this.#peers.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The peers that export `service` to this data center, by name. */
  exporting(service: string): string[] {
    const out: string[] = [];
    for (const p of this.#peers.values()) if (p.services.has(service)) out.push(p.name);
    return out.sort();
  }

  /** Called after every change of the peers (link state, exports, a peer added or removed). */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

function samePeers(a: ReadonlyMap<string, PeerState>, b: ReadonlyMap<string, PeerState>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, p] of a) {
    const q = b.get(name);
    if (q === undefined || q.linked !== p.linked || q.syncedAt !== p.syncedAt) return false;
    if (q.services.size !== p.services.size) return false;
    for (const s of p.services) if (!q.services.has(s)) return false;
  }
  return true;
}

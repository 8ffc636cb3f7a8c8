/**
 * The federation configuration as meta keeps it: each change makes a new immutable state with a
 * larger version, handed to a listener (meta pushes it to every session over the meta link).
 */
import type { ExportEdit, FederationConfig, PublicPeer } from '../../proto/federation.js';
import { MeshregError } from '../../proto/errors.js';

export class FederationBoard {
  #state: FederationConfig;
  readonly #onChange: (c: FederationConfig) => void;

  constructor(initial: FederationConfig, onChange: (c: FederationConfig) => void) {
    this.#state = initial;
    this.#onChange = onChange;
  }

  get state(): FederationConfig {
    return this.#state;
  }

  /** The peers without their tokens (what the admin API shows). */
  publicPeers(): PublicPeer[] {
    return this.#state.peers.map(({ name, addresses, exports }) => ({ name, addresses, exports }));
  }

  /** Adds and removes services of one peer's export list; `not_found` for an unknown peer. */
  editExports(e: ExportEdit): FederationConfig {
    const peer = this.#state.peers.find((p) => p.name === e.peer);
    if (peer === undefined) throw new MeshregError('not_found', `no federation peer ${e.peer}`);
    const next = new Set(peer.exports);
    for (const s of e.add) next.add(s);
    for (const s of e.remove) next.delete(s);
    const peers = this.#state.peers.map((p) => (p === peer ? { ...p, exports: [...next].sort() } : p));
    return this.#set(peers);
  }

  #set(peers: FederationConfig['peers']): FederationConfig {
    const version = Math.max(this.#state.version + 1, Date.now());
    this.#state = Object.freeze({ ...this.#state, version, peers });
    this.#onChange(this.#state);
    return this.#state;
  }
}

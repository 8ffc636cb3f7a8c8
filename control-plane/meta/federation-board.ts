/**
 * The federation configuration as meta keeps it: each change makes a new immutable state with a
 * larger version, handed to a listener (meta pushes it to every session over the meta link).
 *
 * The admin API edits it: a peer's export list, a peer added, replaced or removed. Edits run one at
 * a time. When a federation file is set, an edit is written to it first and applied only once the
 * write succeeded, so what meta serves and what it would start with never part. What comes from the
 * variables (`MESHREG_FEDERATION_PEERS`, `MESHREG_FEDERATION_EXPORTS`) is applied again at every
 * start, so with a file an edit that would be undone by a restart is refused, naming the variable.
 */
import {
  FEDERATION_LIMITS,
  type ExportEdit,
  type FederationConfig,
  type FederationPeer,
  type PeerSpec,
} from '../../proto/federation.js';
import type { PeerPut, PeerSource } from '../../proto/federation-admin.js';
import { MeshregError } from '../../proto/errors.js';
import { federationStore, type FederationStore, type PeerOrigin } from '../federation/federation-config.js';

/** A peer as the admin API shows it: never its token. */
export interface BoardPeer {
  readonly name: string;
  readonly addresses: readonly string[];
  readonly exports: readonly string[];
  readonly source: PeerSource;
}

/** The result of an edit: the new state and the peer it concerned. */
export interface BoardEdit {
  readonly state: FederationConfig;
  readonly peer: BoardPeer;
  /** `putPeer`: the peer did not exist before. */
  readonly created: boolean;
}

const NO_ORIGIN: PeerOrigin = Object.freeze({ source: 'env', tokenFile: '', pinned: [] });

function invalid(path: string, message: string): MeshregError {
  return new MeshregError('invalid_argument', `${path}: ${message}`, { fields: [{ path, message }] });
}

export class FederationBoard {
  #state: FederationConfig;
  readonly #onChange: (c: FederationConfig) => void;
  readonly #store: FederationStore;
  #origins: ReadonlyMap<string, PeerOrigin>;
  /** The edit running now: the next one starts after it (each computes from the state it left). */
  #queue: Promise<unknown> = Promise.resolve();

  /** `store` default: no file (edits last until meta restarts), every peer as from the variables. */
  constructor(initial: FederationConfig, onChange: (c: FederationConfig) => void, store?: FederationStore) {
    this.#state = initial;
    this.#onChange = onChange;
    this.#store = store ?? federationStore('', new Map());
    this.#origins = this.#store.origins;
  }

  get state(): FederationConfig {
    return this.#state;
  }

  /** `file` when accepted edits are written to the federation file, `memory` when they last until restart. */
  get persistence(): 'file' | 'memory' {
    return this.#store.file === '' ? 'memory' : 'file';
  }

  /** The peers without their tokens (what the admin API shows). */
  publicPeers(): BoardPeer[] {
    return this.#state.peers.map((p) => this.#public(p));
  }

  /** Adds and removes services of one peer's export list; `not_found` for an unknown peer. */
  editExports(e: ExportEdit): Promise<BoardEdit> {
    return this.#serial(async () => {
      const peer = this.#state.peers.find((p) => p.name === e.peer);
      if (peer === undefined) throw new MeshregError('not_found', `no federation peer ${e.peer}`);
      this.#editable(peer.name, 'peer');
      this.#keepsPinned(peer.name, e.remove, 'remove');
      const next = new Set(peer.exports);
      for (const s of e.add) next.add(s);
      for (const s of e.remove) next.delete(s);
      if (next.size > FEDERATION_LIMITS.maxExports)
        throw invalid('add', `a peer's export list holds at most ${FEDERATION_LIMITS.maxExports} services`);
      const updated = { ...peer, exports: [...next].sort() };
      const state = await this.#commit(
        this.#state.peers.map((p) => (p === peer ? updated : p)),
        this.#origins,
      );
      return { state, peer: this.#public(updated), created: false };
    });
  }

  /**
   * Adds or replaces a peer: its addresses, its token read from `tokenFile` on this host, and its
   * exports (omitted: a new peer gets none, a replaced one keeps its own).
   */
  putPeer(name: string, put: PeerPut): Promise<BoardEdit> {
    return this.#serial(async () => {
      if (name === this.#state.datacenter) throw invalid('name', `${name} is this data center itself`);
      const old = this.#state.peers.find((p) => p.name === name);
      if (old === undefined && this.#state.peers.length >= FEDERATION_LIMITS.maxPeers)
        throw invalid('name', `at most ${FEDERATION_LIMITS.maxPeers} federation peers`);
      if (old !== undefined) this.#editable(name, 'name');
      const exports = put.exports === undefined ? (old?.exports ?? []) : [...put.exports];
      if (old !== undefined && put.exports !== undefined)
        this.#keepsPinned(
          name,
          old.exports.filter((s) => !exports.includes(s)),
          'exports',
        );
      let token: string;
      try {
        token = this.#store.readToken(put.tokenFile);
      } catch (err) {
        throw invalid('tokenFile', (err as Error).message);
      }
      const peer: FederationPeer = { name, addresses: [...put.addresses], token, exports };
      const pinned = this.#origin(name).pinned;
      const origins = new Map(this.#origins).set(name, {
        source: old === undefined ? 'admin' : this.#origin(name).source,
        tokenFile: put.tokenFile,
        pinned: old === undefined ? [] : pinned,
      });
      const peers = [...this.#state.peers.filter((p) => p.name !== name), peer].sort((a, b) =>
        a.name.localeCompare(b.name),
      );
      const state = await this.#commit(peers, origins);
      return { state, peer: this.#public(peer), created: old === undefined };
    });
  }

  /** Removes a peer: sessions drop its link and its copies. `not_found` for an unknown peer. */
  removePeer(name: string): Promise<FederationConfig> {
    return this.#serial(async () => {
      if (!this.#state.peers.some((p) => p.name === name))
        throw new MeshregError('not_found', `no federation peer ${name}`);
      this.#editable(name, 'name');
      if (this.#store.file !== '' && this.#origin(name).pinned.length > 0)
        throw invalid('name', `MESHREG_FEDERATION_EXPORTS names ${name}: remove it there first`);
      const origins = new Map(this.#origins);
      origins.delete(name);
      return this.#commit(
        this.#state.peers.filter((p) => p.name !== name),
        origins,
      );
    });
  }

  #serial<T>(edit: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(edit, edit);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #origin(name: string): PeerOrigin {
    return this.#origins.get(name) ?? NO_ORIGIN;
  }

  #public(p: FederationPeer): BoardPeer {
    return { name: p.name, addresses: p.addresses, exports: p.exports, source: this.#origin(p.name).source };
  }

  /** With a file, a peer of `MESHREG_FEDERATION_PEERS` cannot be edited: the file cannot hold the edit. */
  #editable(name: string, path: string): void {
    if (this.#store.file !== '' && this.#origin(name).source === 'env')
      throw invalid(
        path,
        `peer ${name} comes from MESHREG_FEDERATION_PEERS, which the admin API cannot change: move it to MESHREG_FEDERATION_FILE`,
      );
  }

  /** With a file, an export `MESHREG_FEDERATION_EXPORTS` gives would come back at the next start. */
  #keepsPinned(name: string, removed: readonly string[], path: string): void {
    if (this.#store.file === '') return;
    const pinned = removed.filter((s) => this.#origin(name).pinned.includes(s));
    if (pinned.length > 0)
      throw invalid(
        path,
        `${pinned.join(', ')} exported to ${name} by MESHREG_FEDERATION_EXPORTS, which the admin API cannot change`,
      );
  }

  /** Writes the file's peers (when there is a file), then applies the new state; a failed write applies nothing. */
  async #commit(
    peers: FederationConfig['peers'],
    origins: ReadonlyMap<string, PeerOrigin>,
  ): Promise<FederationConfig> {
    const persisted = this.#store.file !== '';
    if (persisted) {
      const specs: PeerSpec[] = [];
      for (const p of peers) {
        const o = origins.get(p.name) ?? NO_ORIGIN;
        if (o.source === 'env') continue;
        const entry = { name: p.name, addresses: p.addresses, exports: p.exports };
        specs.push(o.tokenFile === '' ? entry : { ...entry, tokenFile: o.tokenFile });
      }
      try {
        await this.#store.save(specs);
      } catch (err) {
        throw new MeshregError(
          'internal',
          `cannot write MESHREG_FEDERATION_FILE ${this.#store.file}: ${(err as Error).message}; the edit is not applied`,
          { cause: err },
        );
      }
    }
    const next = new Map(origins);
    // Once written, a peer added through the admin API is one of the file's.
    if (persisted)
      for (const [name, o] of next) if (o.source === 'admin') next.set(name, { ...o, source: 'file' });
    this.#origins = next;
    const version = Math.max(this.#state.version + 1, Date.now());
    this.#state = Object.freeze({ ...this.#state, version, peers });
    this.#onChange(this.#state);
    return this.#state;
  }
}

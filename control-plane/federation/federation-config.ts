/**
 * Reads the federation configuration from the environment's variables and the federation file, with
 * the pairs' tokens from their files: what meta starts its {@link FederationBoard} with. Every fault
 * stops the start with an error naming the variable or file. Also where each peer came from, and how
 * the admin API's accepted edits are written back to the federation file (atomically, token file
 * paths kept, tokens never written).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  decodeFederationFile,
  parseExportsSpec,
  parsePeersSpec,
  type FederationConfig,
  type FederationPeer,
  type PeerSpec,
} from '../../proto/federation.js';
import type { PeerSource } from '../../proto/federation-admin.js';
import { describe } from '../../proto/validate.js';
import type { FederationSettings } from '../config.js';

/** Where a peer was configured, as edits must respect it. */
export interface PeerOrigin {
  readonly source: PeerSource;
  /** Its token file as configured; '' means the shared `MESHREG_FEDERATION_TOKEN_FILE`. */
  readonly tokenFile: string;
  /** Exports `MESHREG_FEDERATION_EXPORTS` gives it: applied again at every start. */
  readonly pinned: readonly string[];
}

/** How meta's board keeps accepted edits: in the federation file, or nowhere (until restart). */
export interface FederationStore {
  /** `MESHREG_FEDERATION_FILE`; '' when none is set. */
  readonly file: string;
  /** Where each peer of the starting configuration came from. */
  readonly origins: ReadonlyMap<string, PeerOrigin>;
  /** Replaces the file's peers (atomically); rejects with an Error naming the fault. */
  save(peers: readonly PeerSpec[]): Promise<void>;
  /** Reads a token file on this host; throws an Error naming the fault. */
  readToken(file: string): string;
}

/** What meta starts with: the configuration and its store. */
export interface FederationStart {
  readonly config: FederationConfig;
  readonly store: FederationStore;
}

function readToken(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${what}: cannot read ${file}: ${(err as Error).message}`);
  }
  const token = text.trim();
  if (token === '' || token.length > 4096)
    throw new Error(`${what}: ${file} must hold a token (1..4096 characters)`);
  return token;
}

/** The configuration as given at start (version: the wall clock, so a restarted meta's is newer). */
export function loadFederationConfig(s: FederationSettings, datacenter: string): FederationConfig {
  return loadFederation(s, datacenter).config;
}

/** The configuration as given at start, with where each peer came from and how edits are kept. */
export function loadFederation(s: FederationSettings, datacenter: string): FederationStart {
  const peers = new Map<string, FederationPeer>();
  const origins = new Map<string, PeerOrigin>();
  if (s.file !== '') {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(s.file, 'utf8'));
    } catch (err) {
      throw new Error(`MESHREG_FEDERATION_FILE: cannot read ${s.file}: ${(err as Error).message}`);
    }
    const decoded = decodeFederationFile(raw);
    if (!decoded.ok) throw new Error(`MESHREG_FEDERATION_FILE ${s.file}: ${describe(decoded.errors)}`);
    for (const p of decoded.value.peers) {
      const tokenFile = p.tokenFile ?? s.tokenFile;
      if (tokenFile === '')
        throw new Error(
          `MESHREG_FEDERATION_FILE: peer ${p.name} needs tokenFile (or MESHREG_FEDERATION_TOKEN_FILE)`,
        );
      peers.set(p.name, {
        name: p.name,
        addresses: p.addresses,
        token: readToken(tokenFile, `federation peer ${p.name}`),
        exports: p.exports,
      });
      origins.set(p.name, { source: 'file', tokenFile: p.tokenFile ?? '', pinned: [] });
    }
  }
  let listed: ReturnType<typeof parsePeersSpec>;
  let exports: Map<string, string[]>;
  try {
    listed = parsePeersSpec(s.peers);
  } catch (err) {
    throw new Error(`MESHREG_FEDERATION_PEERS: ${(err as Error).message}`);
  }
  try {
    exports = parseExportsSpec(s.exports);
  } catch (err) {
    throw new Error(`MESHREG_FEDERATION_EXPORTS: ${(err as Error).message}`);
  }
  if (listed.length > 0 && s.tokenFile === '')
    throw new Error(
      'MESHREG_FEDERATION_PEERS needs MESHREG_FEDERATION_TOKEN_FILE (the token the peers share)',
    );
  for (const p of listed) {
    if (peers.has(p.name))
      throw new Error(`federation peer ${p.name} is both in MESHREG_FEDERATION_PEERS and the file`);
    peers.set(p.name, {
      name: p.name,
      addresses: p.addresses,
      token: readToken(s.tokenFile, 'MESHREG_FEDERATION_TOKEN_FILE'),
      exports: [],
    });
    origins.set(p.name, { source: 'env', tokenFile: '', pinned: [] });
  }
  for (const [name, services] of exports) {
    const p = peers.get(name);
    if (p === undefined)
      throw new Error(`MESHREG_FEDERATION_EXPORTS names ${name}, which is not a configured peer`);
    peers.set(name, { ...p, exports: [...new Set([...p.exports, ...services])].sort() });
    const o = origins.get(name);
    if (o !== undefined) origins.set(name, { ...o, pinned: services });
  }
  if (peers.has(datacenter))
    throw new Error(`federation peer ${datacenter} is this data center itself (MESHREG_DATACENTER)`);
  const config = Object.freeze({
    version: Date.now(),
    datacenter,
    peers: [...peers.values()].sort((a, b) => a.name.localeCompare(b.name)),
  });
  return { config, store: federationStore(s.file, origins) };
}

/** A store over `file` ('' : edits are kept in memory only). */
export function federationStore(file: string, origins: ReadonlyMap<string, PeerOrigin>): FederationStore {
  return {
    file,
    origins,
    save: (peers) => (file === '' ? Promise.resolve() : writeFederationFile(file, peers)),
    readToken: (f) => readToken(f, `token file ${f}`),
  };
}

/**
 * Replaces the federation file with `peers` (their token file paths, never tokens): a temp file in
 * the same folder with the old file's mode, fsynced, renamed over it, then the folder fsynced, so a
 * crash leaves the old content or the new, never a mix.
 */
export async function writeFederationFile(file: string, peers: readonly PeerSpec[]): Promise<void> {
  const text = `${JSON.stringify({ peers: peers.map(fileEntry) }, null, 2)}\n`;
  const dir = path.dirname(file);
  const mode = await fs.stat(file).then(
    (st) => st.mode & 0o777,
    () => 0o600,
  );
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await fs.open(tmp, 'wx', mode);
    try {
      await handle.writeFile(text);
      // The process's umask may have narrowed the mode given to open.
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  const dirHandle = await fs.open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

/** One peer as the file holds it: fields in a stable order, `tokenFile` only when it has its own. */
function fileEntry(p: PeerSpec): PeerSpec {
  const { name, addresses, tokenFile, exports } = p;
  return tokenFile === undefined || tokenFile === ''
    ? { name, addresses, exports }
    : { name, addresses, tokenFile, exports };
}

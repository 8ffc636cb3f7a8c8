/**
 * Reads the federation configuration from the environment's variables and the federation file, with
 * the pairs' tokens from their files: what meta starts its {@link FederationBoard} with. Every fault
 * stops the start with an error naming the variable or file.
 */
import { readFileSync } from 'node:fs';
import {
  decodeFederationFile,
  parseExportsSpec,
  parsePeersSpec,
  type FederationConfig,
  type FederationPeer,
} from '../../proto/federation.js';
import { describe } from '../../proto/validate.js';
import type { FederationSettings } from '../config.js';

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
  const peers = new Map<string, FederationPeer>();
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
  }
  for (const [name, services] of exports) {
    const p = peers.get(name);
    if (p === undefined)
      throw new Error(`MESHREG_FEDERATION_EXPORTS names ${name}, which is not a configured peer`);
    peers.set(name, { ...p, exports: [...new Set([...p.exports, ...services])].sort() });
  }
  if (peers.has(datacenter))
    throw new Error(`federation peer ${datacenter} is this data center itself (MESHREG_DATACENTER)`);
  return Object.freeze({
    version: Date.now(),
    datacenter,
    peers: [...peers.values()].sort((a, b) => a.name.localeCompare(b.name)),
  });
}

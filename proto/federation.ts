/**
 * Federation between data centers: the configuration meta keeps and pushes to every session (the
 * peers, the token of each pair, and what this data center exports to each), the admin API's bodies
 * that change it, and the link status each session reports back.
 *
 * Each data center runs a complete control plane. A session imports from every configured peer over
 * the federation link (`federation-link.ts`) what that peer exports to this data center, and serves
 * the peers' imports of what this one exports to them. Nothing is exported by default; an export
 * names a service exactly. Data learned from a peer is never exported onward (invariant 8).
 */
import { DATACENTER_RULES, readDatacenter } from './datacenter.js';
import { SERVICE_NAME_PATTERN } from './instance.js';
import { decodeNoParams, rpcMethod, type Decoder } from './rpc.js';
import {
  at,
  decodeObject,
  readArray,
  readBool,
  readInt,
  readObject,
  readOneOf,
  readString,
  type Decoded,
  type Issues,
} from './validate.js';

/** Most peers, addresses per peer, and exported services per peer. */
export const FEDERATION_LIMITS = Object.freeze({ maxPeers: 64, maxAddresses: 16, maxExports: 10_000 });

/** One federated data center as this one is configured to see it. */
export interface FederationPeer {
  /** Its data center name (`MESHREG_DATACENTER` over there). */
  readonly name: string;
  /** Its session servers' URLs (`ws://` or `wss://`; the link path is added when absent). */
  readonly addresses: readonly string[];
  /** The secret this pair of data centers shares: sent in our hello, expected in theirs. */
  readonly token: string;
  /** Services this data center exports to it, by exact name, sorted. */
  readonly exports: readonly string[];
}

/** What meta pushes to every session (`federation` event on the meta link). */
export interface FederationConfig {
  /** Grows with every change; a session ignores an older one. */
  readonly version: number;
  /** This data center's name. */
  readonly datacenter: string;
  readonly peers: readonly FederationPeer[];
}

/** A peer as the admin API shows it: never its token. */
export type PublicPeer = Omit<FederationPeer, 'token'>;

/** Body of `POST /admin/federation/exports`: services to add to and remove from one peer's export list. */
export interface ExportEdit {
  readonly peer: string;
  readonly add: readonly string[];
  readonly remove: readonly string[];
}

/** A session's link to one peer, as it reports it (`federationStatus`, meta → session). */
export interface PeerLinkStatus {
  readonly name: string;
  /** `linked`: the link is up and the first digest is applied; `connecting`: not yet; `down`: lost. */
  readonly state: 'linked' | 'connecting' | 'down';
  /** Its copies are the last known ones (the link is not linked). */
  readonly stale: boolean;
  /** Wall-clock ms of the last successful sync (a digest round or a notice applied); null: never. */
  readonly lastSyncAt: number | null;
  /** Delay of the last notice applied (its sender's clock to ours: assumes synchronised clocks); null: none. */
  readonly lagMs: number | null;
  /** Services imported from it, and their instances. */
  readonly services: number;
  readonly instances: number;
  /** Services it exports to us as its last digest said. */
  readonly exportsToUs: readonly string[];
  /** Notices applied, digest rounds, services a digest had to repair, bytes received. */
  readonly notices: number;
  readonly digests: number;
  readonly repairs: number;
  readonly bytesIn: number;
  /** Importers of that peer connected to this session (its imports of our exports), and bytes sent to them. */
  readonly importers: number;
  readonly bytesOut: number;
}

export interface SessionFederationStatus {
  readonly sessionId: string;
  readonly datacenter: string;
  readonly peers: readonly PeerLinkStatus[];
}

const serviceRules = {
  required: true,
  maxLength: 256,
  pattern: SERVICE_NAME_PATTERN,
  patternHint: 'must be a service name',
} as const;
const addressRules = {
  required: true,
  maxLength: 512,
  pattern: /^wss?:\/\/[^\s]+$/,
  patternHint: 'must be a ws:// or wss:// URL',
} as const;

/** Reads a list of service names (sorted, without repeats); used by the admin bodies too. */
export function readServices(
  issues: Issues,
  raw: unknown,
  path: string,
  required: boolean,
): string[] | undefined {
  const list = readArray(issues, raw, path, (s, p) => readString(issues, s, p, serviceRules), {
    required,
    maxItems: FEDERATION_LIMITS.maxExports,
  });
  return list === undefined ? undefined : [...new Set(list)].sort();
}

/** Reads a peer's addresses: at least one `ws://` or `wss://` URL. */
export function readAddresses(issues: Issues, raw: unknown, path: string): string[] | undefined {
  const list = readArray(issues, raw, path, (s, p) => readString(issues, s, p, addressRules), {
    required: true,
    maxItems: FEDERATION_LIMITS.maxAddresses,
  });
  if (list?.length === 0) return issues.add(path, 'must name at least one address');
  return list;
}

function readPeer(issues: Issues, raw: unknown, path: string): FederationPeer | undefined {
  const o = readObject(issues, raw, path);
  if (o === undefined) return undefined;
  const name = readDatacenter(issues, o['name'], at(path, 'name'), true);
  const addresses = readAddresses(issues, o['addresses'], at(path, 'addresses'));
  const token = readString(issues, o['token'], at(path, 'token'), { required: true, maxLength: 4096 });
  const exports = readServices(issues, o['exports'], at(path, 'exports'), true);
  if (name === undefined || addresses === undefined || token === undefined || exports === undefined)
    return undefined;
  return { name, addresses, token, exports };
}

/** Decodes the `federation` event (meta → session). */
export const decodeFederationConfig: Decoder<FederationConfig> = (raw) =>
  decodeObject(raw, (issues, o) => {
    const version = readInt(issues, o['version'], 'version', { required: true, min: 0 });
    const datacenter = readDatacenter(issues, o['datacenter'], 'datacenter', true);
    const peers = readArray(issues, o['peers'], 'peers', (p, path) => readPeer(issues, p, path), {
      required: true,
      maxItems: FEDERATION_LIMITS.maxPeers,
    });
    if (version === undefined || datacenter === undefined || peers === undefined) return undefined;
    return { version, datacenter, peers };
  });

/** Decodes the body of `POST /admin/federation/exports`. */
export const decodeExportEdit = (raw: unknown): Decoded<ExportEdit> =>
  decodeObject(raw, (issues, o) => {
    const peer = readDatacenter(issues, o['peer'], 'peer', true);
    const add = readServices(issues, o['add'], 'add', false) ?? [];
    const remove = readServices(issues, o['remove'], 'remove', false) ?? [];
    if (peer === undefined) return undefined;
    if (add.length === 0 && remove.length === 0) {
      issues.add('add', 'add or remove must name at least one service');
      return undefined;
    }
    return { peer, add, remove };
  });

const PEER_STATES = ['linked', 'connecting', 'down'] as const;

function readPeerStatus(issues: Issues, raw: unknown, path: string): PeerLinkStatus | undefined {
  const o = readObject(issues, raw, path);
  if (o === undefined) return undefined;
  const num = (k: string): number => readInt(issues, o[k], at(path, k), { min: 0 }) ?? 0;
  const orNull = (k: string): number | null =>
    o[k] === null ? null : (readInt(issues, o[k], at(path, k), { min: 0 }) ?? null);
  const name = readDatacenter(issues, o['name'], at(path, 'name'), true);
  const state = readOneOf(issues, o['state'], at(path, 'state'), PEER_STATES, true);
  const stale = readBool(issues, o['stale'], at(path, 'stale'), true);
  const exportsToUs = readServices(issues, o['exportsToUs'], at(path, 'exportsToUs'), false) ?? [];
  if (name === undefined || state === undefined || stale === undefined) return undefined;
  return {
    name,
    state,
    stale,
    lastSyncAt: orNull('lastSyncAt'),
    lagMs: orNull('lagMs'),
    services: num('services'),
    instances: num('instances'),
    exportsToUs,
    notices: num('notices'),
    digests: num('digests'),
    repairs: num('repairs'),
    bytesIn: num('bytesIn'),
    importers: num('importers'),
    bytesOut: num('bytesOut'),
  };
}

export const decodeSessionFederationStatus: Decoder<SessionFederationStatus> = (raw) =>
  decodeObject(raw, (issues, o) => {
    const sessionId = readString(issues, o['sessionId'], 'sessionId', { required: true, maxLength: 256 });
    const datacenter = readDatacenter(issues, o['datacenter'], 'datacenter', true);
    const peers = readArray(issues, o['peers'], 'peers', (p, path) => readPeerStatus(issues, p, path), {
      required: true,
      maxItems: FEDERATION_LIMITS.maxPeers,
    });
    if (sessionId === undefined || datacenter === undefined || peers === undefined) return undefined;
    return { sessionId, datacenter, peers };
  });

/** Methods meta calls on a session over the meta link (served through the member's `serve` hook). */
export const FEDERATION_MEMBER = Object.freeze({
  /** The session's links to every peer. */
  status: rpcMethod('federation-status', decodeNoParams, decodeSessionFederationStatus),
});

// ---- configuration text ------------------------------------------------------------------------

/** A peer as configured before its token is read: the token comes from a file. */
export interface PeerSpec {
  readonly name: string;
  readonly addresses: readonly string[];
  /** File holding the pair's token (none: the shared `MESHREG_FEDERATION_TOKEN_FILE`). */
  readonly tokenFile?: string;
  readonly exports: readonly string[];
}

/**
 * Parses `MESHREG_FEDERATION_PEERS`: `dc2=ws://10.0.0.2:9630,ws://10.0.0.3:9630;dc3=wss://…` (peers
 * separated by `;` or whitespace, addresses by `,`). Throws an Error naming the fault.
 */
export function parsePeersSpec(text: string): { name: string; addresses: string[] }[] {
  const out: { name: string; addresses: string[] }[] = [];
  for (const part of text.split(/[;\s]+/).filter((p) => p !== '')) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? '' : part.slice(0, eq);
    const addresses =
      eq < 0
        ? []
        : part
            .slice(eq + 1)
            .split(',')
            .filter((a) => a !== '');
    if (!DATACENTER_RULES.pattern.test(name) || addresses.length === 0)
      throw new Error(`"${part}" must be NAME=URL[,URL…] with a data center name`);
    for (const a of addresses)
      if (!addressRules.pattern.test(a)) throw new Error(`"${a}" must be a ws:// or wss:// URL`);
    if (out.some((p) => p.name === name)) throw new Error(`peer ${name} is listed twice`);
    out.push({ name, addresses });
  }
  return out;
}

/**
 * Parses `MESHREG_FEDERATION_EXPORTS`: `dc2=web,api;dc3=web` (what this data center exports to
 * each peer). Throws an Error naming the fault.
 */
export function parseExportsSpec(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const part of text.split(/[;\s]+/).filter((p) => p !== '')) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? '' : part.slice(0, eq);
    if (!DATACENTER_RULES.pattern.test(name)) throw new Error(`"${part}" must be NAME=SERVICE[,SERVICE…]`);
    const services = part
      .slice(eq + 1)
      .split(',')
      .filter((s) => s !== '');
    for (const s of services)
      if (!SERVICE_NAME_PATTERN.test(s)) throw new Error(`"${s}" must be a service name`);
    out.set(name, [...new Set([...(out.get(name) ?? []), ...services])].sort());
  }
  return out;
}

/**
 * Decodes `MESHREG_FEDERATION_FILE` (JSON): `{"peers": [{"name": "dc2", "addresses": ["ws://…"],
 * "tokenFile": "/run/secrets/dc2", "exports": ["web"]}]}`. A token is never written in it.
 */
export const decodeFederationFile = (raw: unknown): Decoded<{ peers: PeerSpec[] }> =>
  decodeObject(raw, (issues, o) => {
    const peers = readArray(
      issues,
      o['peers'],
      'peers',
      (r, path): PeerSpec | undefined => {
        const p = readObject(issues, r, path);
        if (p === undefined) return undefined;
        if (p['token'] !== undefined)
          issues.add(at(path, 'token'), 'tokens are read from files: use tokenFile');
        const name = readDatacenter(issues, p['name'], at(path, 'name'), true);
        const addresses = readAddresses(issues, p['addresses'], at(path, 'addresses'));
        const tokenFile = readString(issues, p['tokenFile'], at(path, 'tokenFile'), { maxLength: 4096 });
        const exports = readServices(issues, p['exports'], at(path, 'exports'), false) ?? [];
        if (name === undefined || addresses === undefined) return undefined;
        return tokenFile === undefined
          ? { name, addresses, exports }
          : { name, addresses, tokenFile, exports };
      },
      { required: true, maxItems: FEDERATION_LIMITS.maxPeers },
    );
    return peers === undefined ? undefined : { peers };
  });

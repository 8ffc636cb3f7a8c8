/**
 * The federation part of meta's admin API: the answer of `GET /admin/federation` (every peer with
 * its export list and each session's link to it), the answers of its writes, and the body of
 * `PUT /admin/federation/peers/:name`. Tokens never appear in any of them: a peer's token is read
 * from a file on meta's host, named by `tokenFile`.
 */
import { readDatacenter } from './datacenter.js';
import {
  FEDERATION_LIMITS,
  readAddresses,
  readServices,
  type PeerLinkStatus,
  type PublicPeer,
} from './federation.js';
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

/** Where a peer was configured: `MESHREG_FEDERATION_PEERS`, the federation file, or the admin API. */
export const PEER_SOURCES = ['env', 'file', 'admin'] as const;
export type PeerSource = (typeof PEER_SOURCES)[number];

/** A peer's link as a whole: `unknown` when no session answered for it. */
export const ADMIN_LINK_STATES = ['linked', 'connecting', 'down', 'unknown'] as const;
export type AdminLinkState = (typeof ADMIN_LINK_STATES)[number];

/** One session's link to a peer, as it reported it. */
export type AdminSessionLink = { readonly sessionId: string } & Omit<PeerLinkStatus, 'name'>;

/** A session that gave no answer in time, or does not know the peer yet. */
export interface AdminSessionUnknown {
  readonly sessionId: string;
  readonly state: 'unknown';
  readonly reason: string;
}

/** One peer as `GET /admin/federation` shows it. */
export interface AdminFederationPeer extends PublicPeer {
  readonly source: PeerSource;
  /** `linked` if any session is linked to it, else `connecting`, else `down`, else `unknown`. */
  readonly state: AdminLinkState;
  /** No session is linked: what this data center serves of it is the last known copy. */
  readonly stale: boolean;
  /** The newest last sync over the sessions (wall-clock ms); null: never. */
  readonly lastSyncAt: number | null;
  /** The largest lag of a linked session's last notice; null: none. */
  readonly lagMs: number | null;
  /** Services imported from it (the most any session holds). */
  readonly services: number;
  readonly sessions: readonly (AdminSessionLink | AdminSessionUnknown)[];
}

/** `GET /admin/federation` on meta. */
export interface AdminFederation {
  readonly datacenter: string;
  /** The configuration's version (grows with every accepted edit). */
  readonly version: number;
  /** `file`: accepted edits are written to `MESHREG_FEDERATION_FILE`; `memory`: they last until restart. */
  readonly persistence: 'file' | 'memory';
  readonly peers: readonly AdminFederationPeer[];
}

/** A peer as a write answers it (`POST .../exports`, `PUT .../peers/:name`). */
export interface AdminPeerEdit {
  readonly version: number;
  readonly peer: PublicPeer & { readonly source: PeerSource };
}

/** The answer of `DELETE /admin/federation/peers/:name`. */
export interface AdminPeerRemoved {
  readonly version: number;
  readonly removed: string;
}

/** Body of `PUT /admin/federation/peers/:name`: where the peer is, its token's file, what it gets. */
export interface PeerPut {
  readonly addresses: readonly string[];
  /** An absolute path on meta's host; the token itself is never accepted in a body. */
  readonly tokenFile: string;
  /** Omitted: a new peer gets nothing, a replaced one keeps its exports. */
  readonly exports?: readonly string[];
}

/** Decodes the body of `PUT /admin/federation/peers/:name`; a `token` field is refused by name. */
export const decodePeerPut = (raw: unknown): Decoded<PeerPut> =>
  decodeObject(raw, (issues, o) => {
    if (o['token'] !== undefined)
      issues.add('token', 'is never accepted: put the token in a file on meta and name it in tokenFile');
    const addresses = readAddresses(issues, o['addresses'], 'addresses');
    const tokenFile = readString(issues, o['tokenFile'], 'tokenFile', {
      required: true,
      maxLength: 4096,
      pattern: /^\/[^\0]*$/,
      patternHint: "must be an absolute path on meta's host",
    });
    const exports = readServices(issues, o['exports'], 'exports', false);
    if (addresses === undefined || tokenFile === undefined || o['token'] !== undefined) return undefined;
    return exports === undefined ? { addresses, tokenFile } : { addresses, tokenFile, exports };
  });

function readPublicPeer(issues: Issues, o: Record<string, unknown>, path: string) {
  const name = readDatacenter(issues, o['name'], at(path, 'name'), true);
  const addresses = readArray(
    issues,
    o['addresses'],
    at(path, 'addresses'),
    (s, p) => readString(issues, s, p, { required: true, maxLength: 512 }),
    { required: true, maxItems: FEDERATION_LIMITS.maxAddresses },
  );
  const exports = readServices(issues, o['exports'], at(path, 'exports'), true);
  const source = readOneOf(issues, o['source'], at(path, 'source'), PEER_SOURCES, true);
  if (name === undefined || addresses === undefined || exports === undefined || source === undefined)
    return undefined;
  return { name, addresses, exports, source };
}

function orNull(issues: Issues, raw: unknown, path: string): number | null {
  return raw === null ? null : (readInt(issues, raw, path, { required: true }) ?? null);
}

function readSession(
  issues: Issues,
  raw: unknown,
  path: string,
): AdminSessionLink | AdminSessionUnknown | undefined {
  const o = readObject(issues, raw, path);
  if (o === undefined) return undefined;
  const sessionId = readString(issues, o['sessionId'], at(path, 'sessionId'), { required: true });
  const state = readOneOf(issues, o['state'], at(path, 'state'), ADMIN_LINK_STATES, true);
  if (sessionId === undefined || state === undefined) return undefined;
  if (state === 'unknown')
    return { sessionId, state, reason: readString(issues, o['reason'], at(path, 'reason')) ?? '' };
  const n = (k: string): number => readInt(issues, o[k], at(path, k), { required: true }) ?? 0;
  return {
    sessionId,
    state,
    stale: readBool(issues, o['stale'], at(path, 'stale'), true) ?? true,
    lastSyncAt: orNull(issues, o['lastSyncAt'], at(path, 'lastSyncAt')),
    lagMs: orNull(issues, o['lagMs'], at(path, 'lagMs')),
    services: n('services'),
    instances: n('instances'),
    exportsToUs: readServices(issues, o['exportsToUs'], at(path, 'exportsToUs'), true) ?? [],
    notices: n('notices'),
    digests: n('digests'),
    repairs: n('repairs'),
    bytesIn: n('bytesIn'),
    importers: n('importers'),
    bytesOut: n('bytesOut'),
  };
}

function readFederationPeer(issues: Issues, raw: unknown, path: string): AdminFederationPeer | undefined {
  const o = readObject(issues, raw, path);
  if (o === undefined) return undefined;
  const peer = readPublicPeer(issues, o, path);
  const state = readOneOf(issues, o['state'], at(path, 'state'), ADMIN_LINK_STATES, true);
  const stale = readBool(issues, o['stale'], at(path, 'stale'), true);
  const services = readInt(issues, o['services'], at(path, 'services'), { required: true });
  const sessions = readArray(
    issues,
    o['sessions'],
    at(path, 'sessions'),
    (s, p) => readSession(issues, s, p),
    {
      required: true,
    },
  );
  const lastSyncAt = orNull(issues, o['lastSyncAt'], at(path, 'lastSyncAt'));
  const lagMs = orNull(issues, o['lagMs'], at(path, 'lagMs'));
  if (
    peer === undefined ||
    state === undefined ||
    stale === undefined ||
    services === undefined ||
    sessions === undefined
  )
    return undefined;
  return { ...peer, state, stale, lastSyncAt, lagMs, services, sessions };
}

/** Decodes `GET /admin/federation`. */
export const decodeAdminFederation = (raw: unknown): Decoded<AdminFederation> =>
  decodeObject(raw, (issues, o) => {
    const datacenter = readDatacenter(issues, o['datacenter'], 'datacenter', true);
    const version = readInt(issues, o['version'], 'version', { required: true });
    const persistence = readOneOf(issues, o['persistence'], 'persistence', ['file', 'memory'], true);
    const peers = readArray(issues, o['peers'], 'peers', (p, path) => readFederationPeer(issues, p, path), {
      required: true,
      maxItems: FEDERATION_LIMITS.maxPeers,
    });
    if (datacenter === undefined || version === undefined || persistence === undefined || peers === undefined)
      return undefined;
    return { datacenter, version, persistence, peers };
  });

/** Decodes the answer of an export edit or a peer put. */
export const decodeAdminPeerEdit = (raw: unknown): Decoded<AdminPeerEdit> =>
  decodeObject(raw, (issues, o) => {
    const version = readInt(issues, o['version'], 'version', { required: true });
    const p = readObject(issues, o['peer'], 'peer');
    const peer = p === undefined ? undefined : readPublicPeer(issues, p, 'peer');
    if (version === undefined || peer === undefined) return undefined;
    return { version, peer };
  });

/** Decodes the answer of a peer removal. */
export const decodeAdminPeerRemoved = (raw: unknown): Decoded<AdminPeerRemoved> =>
  decodeObject(raw, (issues, o) => {
    const version = readInt(issues, o['version'], 'version', { required: true });
    const removed = readDatacenter(issues, o['removed'], 'removed', true);
    if (version === undefined || removed === undefined) return undefined;
    return { version, removed };
  });

/**
 * Meta's federation admin routes: the peers with each session's link to them (asked of every session
 * over the meta link, each bounded in time: a session that does not answer is listed as `unknown`
 * rather than holding the answer up), export list edits, and adding, replacing and removing a peer.
 * Tokens are never shown and never accepted in a body. Writes are audited with meta's other writes.
 */
import type { AdminMember } from '../../proto/admin-api.js';
import { DATACENTER_RULES } from '../../proto/datacenter.js';
import { MeshregError } from '../../proto/errors.js';
import { FEDERATION_MEMBER, decodeExportEdit, type SessionFederationStatus } from '../../proto/federation.js';
import {
  decodePeerPut,
  type AdminFederation,
  type AdminFederationPeer,
  type AdminLinkState,
  type AdminPeerEdit,
  type AdminPeerRemoved,
  type AdminSessionLink,
  type AdminSessionUnknown,
} from '../../proto/federation-admin.js';
import { describe, type Decoded } from '../../proto/validate.js';
import type { AdminRoute } from '../admin/ops-http.js';
import { gather } from '../console/console-gather.js';
import type { RpcPeer } from '../link/rpc-peer.js';
import type { BoardEdit, BoardPeer, FederationBoard } from './federation-board.js';

/** Longest wait for one session's federation status (as the console's calls). */
export const FEDERATION_STATUS_CALL_MS = 2000;

/** What the routes need of meta. */
export interface FederationAdminHost {
  readonly federation: FederationBoard;
  members(): AdminMember[];
  /** The open meta link of a member linked to this meta; undefined when it is linked elsewhere or down. */
  memberPeer(id: string): RpcPeer | undefined;
}

function body<T>(d: Decoded<T>): T {
  if (!d.ok) throw new MeshregError('invalid_argument', describe(d.errors), { fields: d.errors });
  return d.value;
}

function peerName(raw: string | undefined): string {
  const name = raw ?? '';
  if (name.length > DATACENTER_RULES.maxLength || !DATACENTER_RULES.pattern.test(name))
    throw new MeshregError('invalid_argument', `name: ${DATACENTER_RULES.patternHint}`, {
      fields: [{ path: 'name', message: DATACENTER_RULES.patternHint }],
    });
  return name;
}

function edited(e: BoardEdit): AdminPeerEdit {
  return { version: e.state.version, peer: e.peer };
}

/** The federation routes, over `host`. */
export function federationRoutes(host: FederationAdminHost): AdminRoute[] {
  const board = host.federation;
  return [
    {
      method: 'GET',
      path: '/admin/federation',
      handler: async () => ({ status: 200, body: await federationView(host) }),
    },
    {
      method: 'POST',
      path: '/admin/federation/exports',
      handler: async (req) => ({
        status: 200,
        body: edited(await board.editExports(body(decodeExportEdit(req.body)))),
      }),
    },
    {
      method: 'PUT',
      path: '/admin/federation/peers/:name',
      handler: async (req) => {
        const name = peerName(req.params['name']);
        const e = await board.putPeer(name, body(decodePeerPut(req.body)));
        return { status: e.created ? 201 : 200, body: edited(e) };
      },
    },
    {
      method: 'DELETE',
      path: '/admin/federation/peers/:name',
      handler: async (req) => {
        const name = peerName(req.params['name']);
        const state = await board.removePeer(name);
        return { status: 200, body: { version: state.version, removed: name } satisfies AdminPeerRemoved };
      },
    },
  ];
}

/** Every peer with each session's link to it, as `GET /admin/federation` answers. */
export async function federationView(host: FederationAdminHost): Promise<AdminFederation> {
  const got = await gather(
    {
      members: () => host.members(),
      memberPeer: (id) => host.memberPeer(id),
      consoleCallMs: FEDERATION_STATUS_CALL_MS,
    },
    'session',
    (p, ms) => p.call(FEDERATION_MEMBER.status, {}, ms),
  );
  const state = host.federation.state;
  return {
    datacenter: state.datacenter,
    version: state.version,
    persistence: host.federation.persistence,
    peers: host.federation.publicPeers().map((p) => peerView(p, got.answers, got.unreachable)),
  };
}

const RANK: Readonly<Record<AdminLinkState, number>> = { linked: 3, connecting: 2, down: 1, unknown: 0 };

/** One peer with the sessions' links to it and their summary. */
export function peerView(
  peer: BoardPeer,
  answers: ReadonlyMap<string, SessionFederationStatus>,
  unreachable: readonly string[],
): AdminFederationPeer {
  const sessions: (AdminSessionLink | AdminSessionUnknown)[] = [];
  for (const [sessionId, status] of answers) {
    const link = status.peers.find((l) => l.name === peer.name);
    if (link === undefined) {
      sessions.push({ sessionId, state: 'unknown', reason: 'this session does not list the peer (yet)' });
      continue;
    }
    sessions.push({
      sessionId,
      state: link.state,
      stale: link.stale,
      lastSyncAt: link.lastSyncAt,
      lagMs: link.lagMs,
      services: link.services,
      instances: link.instances,
      exportsToUs: link.exportsToUs,
      notices: link.notices,
      digests: link.digests,
      repairs: link.repairs,
      bytesIn: link.bytesIn,
      importers: link.importers,
      bytesOut: link.bytesOut,
    });
  }
  for (const sessionId of unreachable)
    sessions.push({
      sessionId,
      state: 'unknown',
      reason: `no federation status within ${FEDERATION_STATUS_CALL_MS} ms (or linked to another meta)`,
    });
  sessions.sort((a, b) => a.sessionId.localeCompare(b.sessionId));
  const known = sessions.filter((s): s is AdminSessionLink => s.state !== 'unknown');
  const state = sessions.reduce<AdminLinkState>(
    (best, s) => (RANK[s.state] > RANK[best] ? s.state : best),
    'unknown',
  );
  const max = (xs: (number | null)[]): number | null => {
    const nums = xs.filter((x): x is number => x !== null);
    return nums.length === 0 ? null : Math.max(...nums);
  };
  return {
    ...peer,
    state,
    stale: state !== 'linked',
    lastSyncAt: max(known.map((s) => s.lastSyncAt)),
    lagMs: max(known.filter((s) => s.state === 'linked').map((s) => s.lagMs)),
    services: Math.max(0, ...known.map((s) => s.services)),
    sessions,
  };
}

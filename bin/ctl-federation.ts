/**
 * `meshreg ctl federation`: the federated peers as meta sees them (each session's link summed up per
 * peer), export list edits, and adding, replacing or removing a peer, through meta's admin API.
 */
import {
  decodeAdminFederation,
  decodeAdminPeerEdit,
  decodeAdminPeerRemoved,
  type AdminFederation,
  type AdminPeerEdit,
} from '../proto/federation-admin.js';
import type { Decoded } from '../proto/validate.js';
import { renderTable } from './ctl-table.js';

/** What the commands need of `ctl`: requests to meta that stop at the first failure, and output. */
export interface FederationCtl {
  request<T>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    decode: (raw: unknown) => Decoded<T>,
    body?: object,
  ): Promise<T>;
  readonly json: boolean;
  readonly reason: string | undefined;
  out(s: string): void;
  usage(text: string): Error;
}

/** The usage lines (for `--help`). */
export const FEDERATION_USAGE = `  federation                           federated peers: link state, stale, last sync, lag, exports, imports
  federation export add|remove <peer> <service>...
                                       change what this data center exports to a peer (no restart)
  federation peer set <name> --address <ws-url> [--address <ws-url>]... --token-file <path> [--exports a,b]
                                       add or replace a peer (its token is read from the file on meta's host)
  federation peer remove <name>        remove a peer: sessions drop its link and the copies of its data
`;

const SUBCOMMANDS = 'federation [export add|remove <peer> <service>... | peer set|remove <name> ...]';

/** Runs `meshreg ctl federation ...` (`rest`: the words after `federation`). */
export async function federationCommand(ctl: FederationCtl, rest: readonly string[]): Promise<void> {
  const [what, op, name, ...more] = rest;
  if (what === undefined)
    return list(ctl, await ctl.request('GET', '/admin/federation', decodeAdminFederation));
  if (what === 'export' && (op === 'add' || op === 'remove')) {
    if (name === undefined || more.length === 0)
      throw ctl.usage(`federation export ${op} <peer> <service>...`);
    const body = { peer: name, [op]: more, ...reason(ctl) };
    return edited(ctl, await ctl.request('POST', '/admin/federation/exports', decodeAdminPeerEdit, body));
  }
  if (what === 'peer' && op === 'remove' && name !== undefined && more.length === 0) {
    const path = `/admin/federation/peers/${encodeURIComponent(name)}`;
    const r = await ctl.request('DELETE', path, decodeAdminPeerRemoved, reason(ctl));
    return ctl.out(ctl.json ? JSON.stringify(r) : `removed peer ${r.removed} (version ${r.version})`);
  }
  if (what === 'peer' && op === 'set' && name !== undefined) {
    const path = `/admin/federation/peers/${encodeURIComponent(name)}`;
    return edited(
      ctl,
      await ctl.request('PUT', path, decodeAdminPeerEdit, { ...peerBody(ctl, more), ...reason(ctl) }),
    );
  }
  throw ctl.usage(SUBCOMMANDS);
}

function reason(ctl: FederationCtl): { reason?: string } {
  return ctl.reason === undefined ? {} : { reason: ctl.reason };
}

/** `--address` (repeatable), `--token-file`, `--exports a,b` of `peer set`. */
function peerBody(ctl: FederationCtl, args: readonly string[]): object {
  const addresses: string[] = [];
  let tokenFile: string | undefined;
  let exports: string[] | undefined;
  for (let i = 0; i < args.length; i += 2) {
    const v = args[i + 1];
    if (v === undefined) throw ctl.usage(`${args[i] ?? ''} needs a value`);
    if (args[i] === '--address') addresses.push(v);
    else if (args[i] === '--token-file') tokenFile = v;
    else if (args[i] === '--exports') exports = v.split(',').filter((s) => s !== '');
    else
      throw ctl.usage('federation peer set <name> --address <ws-url>... --token-file <path> [--exports a,b]');
  }
  return exports === undefined ? { addresses, tokenFile } : { addresses, tokenFile, exports };
}

function edited(ctl: FederationCtl, e: AdminPeerEdit): void {
  if (ctl.json) return ctl.out(JSON.stringify(e));
  const p = e.peer;
  ctl.out(`peer ${p.name} (${p.source}), version ${e.version}`);
  ctl.out(`  addresses: ${p.addresses.join(', ')}`);
  ctl.out(`  exports:   ${p.exports.join(', ') || '(none)'}`);
}

/** `12s ago`, `3m ago`, `never`. */
export function ageText(at: number | null, now: number): string {
  if (at === null) return 'never';
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

function list(ctl: FederationCtl, f: AdminFederation): void {
  if (ctl.json) return ctl.out(JSON.stringify(f));
  const kept = f.persistence === 'file' ? 'written to the federation file' : 'kept until meta restarts';
  ctl.out(`data center ${f.datacenter}, configuration version ${f.version} (edits ${kept})`);
  if (f.peers.length === 0) return ctl.out('no federation peers');
  const now = Date.now();
  const rows = f.peers.map((p) => ({
    peer: p.name,
    state: p.state,
    stale: p.stale,
    lastSync: ageText(p.lastSyncAt, now),
    lagMs: p.lagMs ?? '',
    exports: p.exports.length,
    imported: p.services,
    sessions: `${p.sessions.filter((s) => s.state === 'linked').length}/${p.sessions.length} linked`,
    source: p.source,
  }));
  ctl.out(
    renderTable(rows, [
      'peer',
      'state',
      'stale',
      'lastSync',
      'lagMs',
      'exports',
      'imported',
      'sessions',
      'source',
    ]),
  );
}

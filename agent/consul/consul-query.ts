/**
 * The query parameters that choose which instances a service read returns: Consul's `?dc=`,
 * `?near=` and `?node-meta=`, and meshreg's `?scope=`. Each bad value is a 400 naming its
 * parameter; a data center name is not judged here (an unknown or malformed one is Consul's 500
 * "No path to datacenter", answered where the known data centers are).
 */
import { SCOPES, type Scope } from '../../proto/datacenter.js';
import { MeshregError } from '../../proto/errors.js';

/** Most `node-meta` filters one read may carry, and the longest key or value. */
export const MAX_NODE_META_FILTERS = 64;
export const MAX_NODE_META_LENGTH = 512;

/** The only `near` Consul accepts without coordinates: the agent's own node. */
export const NEAR_AGENT = '_agent';

/** The filters of one service read, parsed. */
export interface ReadFilters {
  /** `?dc=`; undefined when absent or empty (the local data center). */
  readonly dc: string | undefined;
  /** `?scope=`; undefined when absent (the local data center, `datacenter`). */
  readonly scope: Scope | undefined;
  /** `?near=_agent`: this node first, then its zone, then the rest. */
  readonly near: boolean;
  /** `?node-meta=key:value` pairs, all of which must match (AND). */
  readonly nodeMeta: readonly (readonly [string, string])[];
}

function invalid(field: string, message: string, detail: string): MeshregError {
  return new MeshregError('invalid_argument', message, { fields: [{ path: field, message: detail }] });
}

/** `?dc=`: absent and empty mean the local data center, as in Consul. */
export function parseDc(query: URLSearchParams): string | undefined {
  const dc = query.get('dc');
  return dc === null || dc === '' ? undefined : dc;
}

/** A read with none of the four: the local data center, unfiltered (shared: most reads are this). */
export const NO_FILTERS: ReadFilters = Object.freeze({
  dc: undefined,
  scope: undefined,
  near: false,
  nodeMeta: Object.freeze([]),
});

/** Parses `dc`, `scope`, `near` and `node-meta`; throws `invalid_argument` naming the parameter. */
export function parseReadFilters(query: URLSearchParams): ReadFilters {
  if (query.size === 0) return NO_FILTERS;
  const dc = parseDc(query);
  const rawScope = query.get('scope');
  let scope: Scope | undefined;
  if (rawScope !== null && rawScope !== '') {
    if (!(SCOPES as readonly string[]).includes(rawScope))
      throw invalid('scope', `Invalid scope: ${clip(rawScope)}`, `must be one of ${SCOPES.join(', ')}`);
    scope = rawScope as Scope;
  }
  if (dc !== undefined && scope === 'global')
    throw invalid(
      'scope',
      'Cannot combine ?dc= with ?scope=global',
      'scope global already reads every data center: drop dc or scope',
    );
  const rawNear = query.get('near');
  if (rawNear !== null && rawNear !== '' && rawNear !== NEAR_AGENT)
    throw invalid(
      'near',
      `Invalid near: ${clip(rawNear)}`,
      `only ${NEAR_AGENT} is supported (meshreg keeps no network coordinates)`,
    );
  return { dc, scope, near: rawNear === NEAR_AGENT, nodeMeta: parseNodeMeta(query) };
}

/** Consul's `node-meta=key:value` (split at the first colon), repeatable. */
export function parseNodeMeta(query: URLSearchParams): [string, string][] {
  const raw = query.getAll('node-meta');
  if (raw.length > MAX_NODE_META_FILTERS)
    throw invalid('node-meta', 'Too many node-meta filters', `at most ${MAX_NODE_META_FILTERS}`);
  return raw.map((f) => {
    const colon = f.indexOf(':');
    const key = colon < 0 ? '' : f.slice(0, colon);
    const value = colon < 0 ? '' : f.slice(colon + 1);
    if (key === '' || key.length > MAX_NODE_META_LENGTH || value.length > MAX_NODE_META_LENGTH)
      throw invalid(
        'node-meta',
        `Invalid node-meta filter: ${clip(f)}`,
        `must be key:value (key not empty, each at most ${MAX_NODE_META_LENGTH} characters)`,
      );
    return [key, value];
  });
}

/** A value quoted in an error message, cut short: the caller sent it, the answer must stay small. */
function clip(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

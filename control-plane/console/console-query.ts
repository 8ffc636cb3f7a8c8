/**
 * The list endpoints' query strings (filters, sort, paging), read strictly — a bad value is a 400
 * naming the parameter — and applied to lists in memory. Pure functions, tested without sockets.
 */
import type { ConsoleAgent, ConsoleServiceRow } from '../../proto/console.js';
import { MeshregError } from '../../proto/errors.js';

/** Largest page of a list endpoint. */
export const MAX_PAGE = 500;
const DEFAULT_PAGE = 100;

export const SERVICE_SORTS = ['name', '-name', 'instances', '-instances', 'critical', '-critical'] as const;
export type ServiceSort = (typeof SERVICE_SORTS)[number];

export interface ServiceQuery {
  readonly filter: string;
  readonly health: '' | 'passing' | 'warning' | 'critical';
  readonly zone: string;
  readonly tag: string;
  readonly sort: ServiceSort;
  readonly offset: number;
  readonly limit: number;
}

export interface AgentQuery {
  readonly filter: string;
  readonly status: '' | 'online' | 'offline';
  readonly session: string;
  readonly offset: number;
  readonly limit: number;
}

function bad(param: string, message: string): MeshregError {
  return new MeshregError('invalid_argument', `${param}: ${message}`, { fields: [{ path: param, message }] });
}

function text(q: URLSearchParams, name: string): string {
  const v = q.get(name) ?? '';
  if (v.length > 256) throw bad(name, 'must be at most 256 characters');
  return v;
}

function oneOf<T extends string>(q: URLSearchParams, name: string, allowed: readonly T[], dflt: T): T {
  const v = q.get(name);
  if (v === null || v === '') return dflt;
  if (!(allowed as readonly string[]).includes(v)) throw bad(name, `must be one of ${allowed.join(', ')}`);
  return v as T;
}

/** An integer parameter in min..max, `dflt` when absent. */
export function intParam(q: URLSearchParams, name: string, min: number, max: number, dflt: number): number {
  const v = q.get(name);
  if (v === null || v === '') return dflt;
  const n = /^\d{1,9}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw bad(name, `must be an integer ${min}..${max}`);
  return n;
}

export function readServiceQuery(q: URLSearchParams): ServiceQuery {
  return {
    filter: text(q, 'filter'),
    health: oneOf(q, 'health', ['', 'passing', 'warning', 'critical'], ''),
    zone: text(q, 'zone'),
    tag: text(q, 'tag'),
    sort: oneOf(q, 'sort', SERVICE_SORTS, 'name'),
    offset: intParam(q, 'offset', 0, 100_000_000, 0),
    limit: intParam(q, 'limit', 1, MAX_PAGE, DEFAULT_PAGE),
  };
}

export function readAgentQuery(q: URLSearchParams): AgentQuery {
  return {
    filter: text(q, 'filter'),
    status: oneOf(q, 'status', ['', 'online', 'offline'], ''),
    session: text(q, 'session'),
    offset: intParam(q, 'offset', 0, 100_000_000, 0),
    limit: intParam(q, 'limit', 1, MAX_PAGE, DEFAULT_PAGE),
  };
}

/** The services matching `q`, sorted; the caller pages them. */
export function selectServices(rows: readonly ConsoleServiceRow[], q: ServiceQuery): ConsoleServiceRow[] {
  const filter = q.filter.toLowerCase();
  const out = rows.filter(
    (r) =>
      (filter === '' || r.name.toLowerCase().includes(filter)) &&
      (q.health === '' || r[q.health] > 0) &&
      (q.zone === '' || r.zones.includes(q.zone)) &&
      (q.tag === '' || r.tags.includes(q.tag)),
  );
  const desc = q.sort.startsWith('-');
  const field = q.sort.replace(/^-/, '') as 'name' | 'instances' | 'critical';
  const byName = (a: ConsoleServiceRow, b: ConsoleServiceRow): number =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  const cmp =
    field === 'name'
      ? byName
      : (a: ConsoleServiceRow, b: ConsoleServiceRow): number => a[field] - b[field] || byName(a, b);
  return out.sort((a, b) => (desc ? cmp(b, a) : cmp(a, b)));
}

/** The agents matching `q`, one per node (a connected one wins over an offline record elsewhere). */
export function selectAgents(agents: readonly ConsoleAgent[], q: AgentQuery): ConsoleAgent[] {
  const byNode = new Map<string, ConsoleAgent>();
  for (const a of agents) {
    const seen = byNode.get(a.nodeId);
    if (seen === undefined || (seen.offline && !a.offline)) byNode.set(a.nodeId, a);
  }
  const filter = q.filter.toLowerCase();
  return [...byNode.values()]
    .filter(
      (a) =>
        (filter === '' || a.node.toLowerCase().includes(filter)) &&
        (q.status === '' || a.offline === (q.status === 'offline')) &&
        (q.session === '' || a.session === q.session),
    )
    .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.nodeId < b.nodeId ? -1 : 1));
}

/**
 * Hash routing: `#/overview`, `#/services?filter=web`, `#/services/web`, `#/agents`, `#/operations`.
 * The hash never reaches the server, so the static handler serves one `index.html` for all of them.
 */

/** The page a hash names, with its path parameter and query. */
export interface Route {
  readonly page: 'overview' | 'services' | 'service' | 'agents' | 'operations';
  /** The service name of the detail page; '' elsewhere. */
  readonly name: string;
  readonly query: URLSearchParams;
}

/** Parses `location.hash`; anything unknown is the overview. */
export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const path = q === -1 ? raw : raw.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : raw.slice(q + 1));
  const [first = '', ...rest] = path.split('/');
  if (first === 'services' && rest.length > 0 && rest.join('/') !== '') {
    let name = rest.join('/');
    try {
      name = decodeURIComponent(name);
    } catch {
      // A malformed escape: show the name as typed, the API refuses it with a clear error.
    }
    return { page: 'service', name, query };
  }
  if (first === 'services' || first === 'agents' || first === 'operations')
    return { page: first, name: '', query };
  return { page: 'overview', name: '', query };
}

/** The hash of the detail page of `service`. */
export const serviceHref = (service: string): string => `#/services/${encodeURIComponent(service)}`;

/** The hash of `page` with `params` (empty ones left out). */
export function pageHref(page: string, params: Readonly<Record<string, string | number>> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '') q.set(k, String(v));
  const s = q.toString();
  return s === '' ? `#/${page}` : `#/${page}?${s}`;
}

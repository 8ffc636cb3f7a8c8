/**
 * REST-JSON EDS: `POST /v3/discovery:endpoints` (xds_protocol "REST-JSON polling subscriptions").
 * A pure function from a parsed body to `{status, body}`, so the agent's HTTP layer stays thin and
 * this is testable without sockets.
 *
 * Long polling: Envoy's REST client times a request out after `request_timeout` (1 s by default)
 * and counts that as a failure, so by default we answer at once (200, or 304 when up to date).
 * A client that allows longer requests opts in with the query `?wait=<duration>` (Consul's
 * blocking-query spelling: `500ms`, `30s`, `5m`); we then hold an up-to-date request until its
 * resources change or the wait ends (304), capped at `maxWaitMs`.
 */
import { MeshregError } from '../../proto/errors.js';
import { silentLogger, type Logger } from '../../proto/runtime/log.js';
import type { FieldError } from '../../proto/validate.js';
import { decodeDiscoveryRequest, type DiscoveryRequestView } from './discovery-request.js';
import type { EndpointSource } from './endpoint-source.js';
import type { CacheResponse, WatchRequest } from './snapshot-cache.js';
import { TYPE_URLS } from './type-urls.js';
import { xdsViewFor, type XdsView } from './xds-view.js';

/** The route the agent's HTTP server should send to {@link handleDiscoveryRest}. */
export const EDS_REST_PATH = '/v3/discovery:endpoints';

/** Longest hold a `?wait=` can ask for unless the caller sets `maxWaitMs`. */
export const DEFAULT_MAX_WAIT_MS = 5 * 60_000;

/** Options of {@link handleDiscoveryRest}. */
export interface RestGatewayOptions {
  /** The raw `wait` query parameter; absent or empty means answer at once. */
  readonly wait?: string | undefined;
  /** Aborted when the client disconnects: the held request is released. */
  readonly signal?: AbortSignal | undefined;
  /** Upper bound of a hold; longer waits are cut to it. */
  readonly maxWaitMs?: number | undefined;
  /** The shared view by default, so REST and gRPC agree on versions. */
  readonly view?: XdsView | undefined;
  readonly logger?: Logger | undefined;
}

/** What the HTTP layer writes: status, optional JSON body, extra headers. */
export interface RestResponse {
  readonly status: number;
  readonly body?: unknown;
  /** `body` already encoded, when it was built from encoded resources (sent instead of `body`). */
  readonly text?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

const JSON_HEADERS = Object.freeze({ 'content-type': 'application/json' });

/**
 * Answers one REST EDS request: 400 with `{error:{code, message, fields[]}}` naming each bad
 * field, 200 with a DiscoveryResponse, or 304 with no body when `version_info` is current (after
 * the optional hold). Never rejects.
 */
export async function handleDiscoveryRest(
  body: unknown,
  source: EndpointSource,
  opts: RestGatewayOptions = {},
): Promise<RestResponse> {
  const waitMs = parseWait(opts.wait, opts.maxWaitMs ?? DEFAULT_MAX_WAIT_MS);
  if (typeof waitMs !== 'number') return badRequest([waitMs]);
  const decoded = decodeDiscoveryRequest(body);
  if (!decoded.ok) return badRequest(decoded.errors);
  const request = decoded.value;
  const problem = checkEdsRequest(request);
  if (problem !== undefined) return badRequest([problem]);
  const logger = opts.logger ?? silentLogger;
  if (request.errorDetail !== undefined) {
    logger.warn('eds: client rejected a REST update', {
      node: request.nodeId,
      version: request.versionInfo,
      error: request.errorDetail.message,
    });
  }
  const view = opts.view ?? xdsViewFor(source, logger);
  const names = [...new Set(request.resourceNames)].sort();
  // REST has no stream to end, so the poller's interest is renewed per request and expires when idle.
  const node = view.subscribe(request.nodeId, `rest:${names.join(',')}`, names, true, request.caller);
  const watch: WatchRequest = { typeUrl: TYPE_URLS.endpoint, versionInfo: request.versionInfo, names };
  const answer =
    waitMs === 0 ? view.cache.fetch(node, watch) : await hold(view, node, watch, waitMs, opts.signal);
  return answer === undefined
    ? { status: 304 }
    : {
        status: 200,
        body: discoveryResponseJson(answer),
        text: discoveryResponseText(answer),
        headers: JSON_HEADERS,
      };
}

/** The DiscoveryResponse in proto3 JSON; the nonce is the version (REST needs none, it is harmless). */
export function discoveryResponseJson(answer: CacheResponse): Record<string, unknown> {
  return {
    version_info: answer.version,
    resources: answer.resources.map((r) => r.body),
    type_url: answer.typeUrl,
    nonce: answer.version,
  };
}

/**
 * {@link discoveryResponseJson} as text, from each resource's digest (its JSON, built once per
 * version): a poll re-encodes only the envelope, never the endpoints.
 */
export function discoveryResponseText(answer: CacheResponse): string {
  const resources = answer.resources.map((r) => r.digest).join(',');
  const version = JSON.stringify(answer.version);
  return `{"version_info":${version},"resources":[${resources}],"type_url":${JSON.stringify(answer.typeUrl)},"nonce":${version}}`;
}

function checkEdsRequest(request: DiscoveryRequestView): FieldError | undefined {
  if (request.typeUrl !== '' && request.typeUrl !== TYPE_URLS.endpoint) {
    return { path: 'type_url', message: `must be ${TYPE_URLS.endpoint} on this endpoint` };
  }
  // EDS has no wildcard subscription (xds_protocol "How the client specifies what resources to return").
  if (request.resourceNames.length === 0)
    return { path: 'resource_names', message: 'must name at least one cluster' };
  return undefined;
}

/** Parses `wait`: a FieldError for bad input, else milliseconds (0 = no hold). */
export function parseWait(raw: string | undefined, maxWaitMs: number): number | FieldError {
  if (raw === undefined || raw === '') return 0;
  const match = /^(\d{1,9})(ms|s|m)?$/.exec(raw);
  if (match === null) return { path: 'wait', message: 'must be a duration such as 500ms, 30s or 5m' };
  const unitMs = match[2] === 'ms' ? 1 : match[2] === 'm' ? 60_000 : 1000;
  return Math.min(Number(match[1]) * unitMs, maxWaitMs);
}

function hold(
  view: XdsView,
  node: string,
  watch: WatchRequest,
  waitMs: number,
  signal: AbortSignal | undefined,
): Promise<CacheResponse | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (answer: CacheResponse | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      cancel();
      resolve(answer);
    };
    const onAbort = (): void => {
      finish(undefined);
    };
    const timer = setTimeout(onAbort, waitMs);
    // createWatch may answer synchronously; `cancel` is then a no-op, so define it before use.
    let cancel: () => void = () => undefined;
    cancel = view.cache.createWatch(node, watch, finish);
    if (settled) return;
    if (signal?.aborted === true) finish(undefined);
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function badRequest(fields: readonly FieldError[]): RestResponse {
  const error = new MeshregError('invalid_argument', 'invalid DiscoveryRequest', { fields });
  return { status: error.httpStatus, body: error.toJSON(), headers: JSON_HEADERS };
}

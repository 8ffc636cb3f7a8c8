/**
 * Type URLs of the xDS v3 resources we serve (xds_protocol "Resource Types"). A DiscoveryRequest
 * names one of them in `type_url`; an Any carries one of them in `@type`.
 */

/** The four resource types a proxyless gRPC client walks, parents first (gRFC A27). */
export const TYPE_URLS = Object.freeze({
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
} as const);

/** One of {@link TYPE_URLS}. */
export type ResourceTypeUrl = (typeof TYPE_URLS)[keyof typeof TYPE_URLS];

/** Every served type URL, in the order parents come before children. */
export const RESOURCE_TYPE_URLS: readonly ResourceTypeUrl[] = [
  TYPE_URLS.listener,
  TYPE_URLS.route,
  TYPE_URLS.cluster,
  TYPE_URLS.endpoint,
];

/** The HTTP connection manager carried inside a Listener's `api_listener`. */
export const HTTP_CONNECTION_MANAGER_TYPE_URL =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

/** The router HTTP filter, which must be the last filter of the chain. */
export const ROUTER_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

/** True when `url` names a type this server can answer. */
export function isResourceTypeUrl(url: string): url is ResourceTypeUrl {
  return (RESOURCE_TYPE_URLS as readonly string[]).includes(url);
}

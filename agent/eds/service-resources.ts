/**
 * The Listener, RouteConfiguration and Cluster that let a proxyless gRPC client dial
 * `xds:///<service>` (gRFC A27), all named after the service so each name maps back to one service.
 * They are proto3 JSON with their Any `@type`, like the ClusterLoadAssignment.
 */
import {
  buildClusterLoadAssignment,
  type AssignmentCaller,
  type ClusterLoadAssignmentJson,
} from './cluster-load-assignment.js';
import type { ServiceSnapshot } from './endpoint-source.js';
import {
  HTTP_CONNECTION_MANAGER_TYPE_URL,
  ROUTER_TYPE_URL,
  TYPE_URLS,
  type ResourceTypeUrl,
} from './type-urls.js';

/** A resource body in proto3 JSON, carrying its `@type`. */
export type ResourceJson = Readonly<Record<string, unknown>> & { readonly '@type': ResourceTypeUrl };

/** Every resource of one service, one per type, plus the mapping's skip count. */
export interface ServiceResources {
  readonly service: string;
  readonly byType: ReadonlyMap<ResourceTypeUrl, ResourceJson>;
  /** Instances the ClusterLoadAssignment could not express (see buildClusterLoadAssignment). */
  readonly skipped: number;
}

/** Config source meaning "over the same ADS stream" (config/core/v3/config_source.proto). */
const ADS_SOURCE = Object.freeze({ ads: {}, resource_api_version: 'V3' });

/**
 * A client-side (api_listener) Listener whose HTTP connection manager fetches its routes by RDS
 * over ADS. The router filter is last, as every xDS gRPC implementation requires (gRFC A39).
 */
export function buildListener(service: string): ResourceJson {
  return {
    '@type': TYPE_URLS.listener,
    name: service,
    api_listener: {
      api_listener: {
        '@type': HTTP_CONNECTION_MANAGER_TYPE_URL,
        stat_prefix: service,
        rds: { route_config_name: service, config_source: ADS_SOURCE },
        http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE_URL } }],
      },
    },
  };
}

/** One virtual host matching every authority, routing every path (prefix "") to the service's cluster. */
export function buildRouteConfiguration(service: string): ResourceJson {
  return {
    '@type': TYPE_URLS.route,
    name: service,
    virtual_hosts: [
      { name: service, domains: ['*'], routes: [{ match: { prefix: '' }, route: { cluster: service } }] },
    ],
  };
}

/**
 * An EDS cluster fed over ADS, round robin; its endpoints resource has the cluster's name.
 * Locality-weighted balancing makes Envoy split a priority's traffic between its localities by
 * their `load_balancing_weight` (cluster.proto `CommonLbConfig.locality_weighted_lb_config`);
 * without it Envoy ignores locality weights. Proxyless gRPC always weighs localities.
 */
export function buildCluster(service: string): ResourceJson {
  return {
    '@type': TYPE_URLS.cluster,
    name: service,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS_SOURCE },
    lb_policy: 'ROUND_ROBIN',
    common_lb_config: { locality_weighted_lb_config: {} },
  };
}

/** Builds all four resources of one service from the agent's view of it, as `caller` should see it. */
export function buildServiceResources(snapshot: ServiceSnapshot, caller: AssignmentCaller): ServiceResources {
  const { assignment, skipped } = buildClusterLoadAssignment(snapshot, caller);
  const byType = new Map<ResourceTypeUrl, ResourceJson>([
    [TYPE_URLS.listener, buildListener(snapshot.service)],
    [TYPE_URLS.route, buildRouteConfiguration(snapshot.service)],
    [TYPE_URLS.cluster, buildCluster(snapshot.service)],
    [TYPE_URLS.endpoint, assignment as ClusterLoadAssignmentJson & ResourceJson],
  ]);
  return { service: snapshot.service, byType, skipped };
}

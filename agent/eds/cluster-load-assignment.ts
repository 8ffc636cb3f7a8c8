/**
 * Maps the agent's view of one service to an Envoy `ClusterLoadAssignment` in canonical proto3
 * JSON with proto field names (snake_case), the form REST EDS returns and the gRPC path encodes.
 * Field rules follow envoy/config/endpoint/v3/endpoint_components.proto and the client checks of
 * proxyless gRPC (gRFC A27): IP literals only, a locality on every group, locality weight >= 1,
 * contiguous priorities, no duplicate addresses.
 */
import { isIP } from 'node:net';
import { registrationId, type Instance } from '../../proto/instance.js';
import type { Scope } from '../../proto/datacenter.js';
import type { ServiceSnapshot } from './endpoint-source.js';
import { TYPE_URLS } from './type-urls.js';

/** Envoy's HealthStatus names that we emit (config/core/v3/health_check.proto). */
export type HealthStatusName = 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'DEGRADED';

/** LbEndpoint in proto3 JSON. */
export interface LbEndpointJson {
  readonly endpoint: {
    readonly address: { readonly socket_address: { readonly address: string; readonly port_value: number } };
  };
  readonly health_status: HealthStatusName;
  readonly load_balancing_weight: number;
  readonly metadata?: {
    readonly filter_metadata: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  };
}

/** LocalityLbEndpoints in proto3 JSON. */
export interface LocalityLbEndpointsJson {
  /** Always present (gRPC clients reject a group without one); empty strings are omitted. */
  readonly locality: { readonly region?: string; readonly zone?: string };
  readonly lb_endpoints: readonly LbEndpointJson[];
  readonly load_balancing_weight: number;
  /** Omitted when 0, as canonical proto3 JSON omits default values. */
  readonly priority?: number;
}

/** ClusterLoadAssignment in proto3 JSON, tagged with its Any type so it can sit in `resources[]`. */
export interface ClusterLoadAssignmentJson {
  readonly '@type': typeof TYPE_URLS.endpoint;
  readonly cluster_name: string;
  readonly endpoints: readonly LocalityLbEndpointsJson[];
}

/** The mapping result: the resource plus how many instances could not be expressed. */
export interface LoadAssignmentResult {
  readonly assignment: ClusterLoadAssignmentJson;
  /** Instances left out: address not an IP literal, port 0, or a duplicate address:port. */
  readonly skipped: number;
}

/** Metadata filter for subset load balancing; Envoy matches subset selectors here. */
export const LB_METADATA_FILTER = 'envoy.lb';
/** Our own metadata filter: data that is not a subset key (tags are a list, not key=value). */
export const MESHREG_METADATA_FILTER = 'meshreg';

/** Health of one instance as Envoy sees it; draining wins over the check result. */
export function healthStatusOf(instance: Instance, deregistering?: ReadonlySet<string>): HealthStatusName {
  if (
    deregistering !== undefined &&
    (deregistering.has(registrationId(instance)) || deregistering.has(instance.id))
  ) {
    return 'DRAINING';
  }
  switch (instance.health) {
    case 'passing':
      return 'HEALTHY';
    case 'warning':
      return 'DEGRADED';
    case 'critical':
      return 'UNHEALTHY';
    default: {
      const unreachable: never = instance.health;
      return unreachable;
    }
  }
}

/** Endpoint weight: Consul's weight for the current health, at least 1 (the proto requires >= 1). */
export function endpointWeightOf(instance: Instance): number {
  const weight = instance.health === 'warning' ? instance.weights.warning : instance.weights.passing;
  return Math.max(1, weight);
}

/** The address to dial: the service address, or the node's when the service has none (Consul's rule). */
export function endpointAddressOf(instance: Instance): string {
  return instance.address !== '' ? instance.address : instance.nodeAddress;
}

/**
 * Whom an answer is for: the caller's region and zone (already defaulted to the agent's) and its
 * scope (`datacenter` when omitted).
 */
export interface AssignmentCaller {
  readonly zone: string;
  readonly region: string;
  readonly scope?: Scope;
}

/**
 * Priority tiers before compaction: the caller's zone, the other zones of the local data center,
 * then other data centers.
 */
const TIER = { callerZone: 0, otherZones: 1, remote: 2 } as const;

interface Group {
  readonly region: string;
  readonly zone: string;
  readonly tier: number;
  readonly endpoints: LbEndpointJson[];
}

/**
 * Builds the ClusterLoadAssignment for `snapshot` as `caller` should see it: one locality per
 * (region, zone), priority 0 for the caller's zone, 1 for the other zones of this data center, 2
 * for other data centers' copies (scope `global` only; their region is the data center's name),
 * with unused priorities closed up so they stay contiguous from 0. Scope `zone` keeps only the
 * caller's zone (all of the data center when the caller's zone is unknown).
 */
export function buildClusterLoadAssignment(
  snapshot: ServiceSnapshot,
  caller: AssignmentCaller,
): LoadAssignmentResult {
  const scope = caller.scope ?? 'datacenter';
  const groups = new Map<string, Group>();
  const seen = new Set<string>();
  let skipped = 0;
  const add = (
    instances: readonly Instance[],
    deregistering: ReadonlySet<string> | undefined,
    dc?: string,
  ) => {
    for (const instance of sortedInstances(instances)) {
      const address = endpointAddressOf(instance);
      const key = `${address}|${instance.port}`;
      // EDS endpoints must be IP literals with a port; duplicates make gRPC clients reject the
      // whole resource, so the first instance (local before remote, then id order) keeps the address.
      if (isIP(address) === 0 || instance.port === 0 || seen.has(key)) {
        skipped++;
        continue;
      }
      const region = dc ?? instance.region;
      const tier =
        dc !== undefined ? TIER.remote : isCallerZone(instance, caller) ? TIER.callerZone : TIER.otherZones;
      if (scope === 'zone' && tier !== TIER.callerZone && caller.zone !== '') continue;
      seen.add(key);
      const groupKey = JSON.stringify([tier, region, instance.zone]);
      let group = groups.get(groupKey);
      if (group === undefined) {
        group = { region, zone: instance.zone, tier, endpoints: [] };
        groups.set(groupKey, group);
      }
      group.endpoints.push(lbEndpointOf(instance, address, deregistering));
    }
  };
  add(snapshot.instances, snapshot.deregistering);
  if (scope === 'global') {
    const remote = [...(snapshot.remote ?? [])].sort((a, b) => compare(a.datacenter, b.datacenter));
    for (const part of remote) add(part.instances, part.deregistering, part.datacenter);
  }
  // Envoy rejects gaps in priorities: the tiers in use become 0, 1, 2 in order.
  const used = [...new Set([...groups.values()].map((g) => g.tier))].sort((a, b) => a - b);
  const endpoints = [...groups.values()]
    .sort((a, b) => a.tier - b.tier || compare(a.region, b.region) || compare(a.zone, b.zone))
    .map((g) => localityGroupOf(g, used.indexOf(g.tier)));
  return { assignment: { '@type': TYPE_URLS.endpoint, cluster_name: snapshot.service, endpoints }, skipped };
}

/** Locality fields are omitted when empty; the `priority` field when 0 (proto3 JSON defaults). */
function localityGroupOf(group: Group, priority: number): LocalityLbEndpointsJson {
  return {
    locality: {
      ...(group.region === '' ? {} : { region: group.region }),
      ...(group.zone === '' ? {} : { zone: group.zone }),
    },
    lb_endpoints: group.endpoints,
    load_balancing_weight: localityWeightOf(group.endpoints),
    ...(priority === 0 ? {} : { priority }),
  };
}

function lbEndpointOf(
  instance: Instance,
  address: string,
  deregistering: ReadonlySet<string> | undefined,
): LbEndpointJson {
  const base = {
    endpoint: { address: { socket_address: { address, port_value: instance.port } } },
    health_status: healthStatusOf(instance, deregistering),
    load_balancing_weight: endpointWeightOf(instance),
  };
  const metadata = metadataOf(instance);
  return metadata === undefined ? base : { ...base, metadata };
}

/**
 * Meta goes under `envoy.lb` as string values so subset selectors (`version=v2`) work; tags and the
 * instance id go under our own filter because a list cannot be a subset key.
 */
function metadataOf(instance: Instance): LbEndpointJson['metadata'] {
  const filters: Record<string, Readonly<Record<string, unknown>>> = {};
  if (Object.keys(instance.meta).length > 0) filters[LB_METADATA_FILTER] = { ...instance.meta };
  filters[MESHREG_METADATA_FILTER] = {
    instance_id: registrationId(instance),
    ...(instance.tags.length > 0 ? { tags: [...instance.tags] } : {}),
  };
  return { filter_metadata: filters };
}

/** Sum of the weights that can take traffic, so a locality's share follows its healthy capacity. */
function localityWeightOf(endpoints: readonly LbEndpointJson[]): number {
  let sum = 0;
  for (const e of endpoints) {
    if (e.health_status === 'HEALTHY' || e.health_status === 'DEGRADED') sum += e.load_balancing_weight;
  }
  // The locality weight is a UInt32Value >= 1; zero makes clients drop the locality silently.
  return Math.min(Math.max(1, sum), 0xffffffff);
}

/**
 * In the caller's zone: same zone, and same region when the caller names one. A caller without a
 * zone has none of its own, so every zone of the data center is "other" and shares priority 0.
 */
function isCallerZone(instance: Instance, caller: AssignmentCaller): boolean {
  if (caller.zone === '') return false;
  return instance.zone === caller.zone && (caller.region === '' || instance.region === caller.region);
}

function sortedInstances(instances: readonly Instance[]): Instance[] {
  return [...instances].sort((a, b) => compare(registrationId(a), registrationId(b)));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

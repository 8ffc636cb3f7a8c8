/**
 * Renders registry records in Consul's response shapes, PascalCase, with `[]` and `{}` rather than
 * null (Consul normalises `Tags`, `Checks` and `ServiceTags` the same way).
 */
import type { CheckState, Instance } from '../../proto/instance.js';
import type { LocalRecord } from '../local/local-services.js';

export interface NodeCheckJson {
  Node: string;
  CheckID: string;
  Name: string;
  Status: string;
  Notes: string;
  Output: string;
  ServiceID: string;
  ServiceName: string;
  ServiceTags: readonly string[];
  Type: string;
  CreateIndex: number;
  ModifyIndex: number;
}

/** A check of `node`; a service check names its instance, a node-level one (`of` undefined) none. */
function checkJson(node: string, c: CheckState, of: Instance | undefined, index: number): NodeCheckJson {
  return {
    Node: node,
    CheckID: c.id,
    Name: c.name,
    Status: c.status,
    Notes: '',
    Output: c.output,
    ServiceID: of?.id ?? '',
    ServiceName: of?.service ?? '',
    ServiceTags: of?.tags ?? [],
    Type: c.type,
    CreateIndex: index,
    ModifyIndex: index,
  };
}

/** The node-level check Consul adds to every entry; an instance listed here has a live agent. */
const SERF_HEALTH: CheckState = {
  id: 'serfHealth',
  name: 'Serf Health Status',
  status: 'passing',
  output: 'Agent alive and reachable',
  type: '',
};

/**
 * The node meta of an instance's node: its zone and region when set (Consul's `Node.Meta`, what
 * `?node-meta=zone:a` filters on); `{}` otherwise.
 */
export function nodeMeta(i: Instance): Record<string, string> {
  if (i.zone === '' && i.region === '') return {};
  const meta: Record<string, string> = {};
  if (i.zone !== '') meta['zone'] = i.zone;
  if (i.region !== '') meta['region'] = i.region;
  return meta;
}

/** One entry of `GET /v1/health/service/:name`; `datacenter` is the instance's own. */
export function healthEntry(i: Instance, datacenter: string, index: number): unknown {
  return {
    Node: {
      ID: i.nodeId,
      Node: i.node,
      Address: i.nodeAddress,
      Datacenter: datacenter,
      TaggedAddresses: { lan: i.nodeAddress, wan: i.nodeAddress },
      Meta: nodeMeta(i),
      CreateIndex: index,
      ModifyIndex: index,
    },
    Service: serviceJson(i, index),
    Checks: [
      checkJson(i.node, SERF_HEALTH, undefined, index),
      ...i.checks.map((c) => checkJson(i.node, c, i, index)),
    ],
  };
}

function serviceJson(i: Instance, index: number): Record<string, unknown> {
  return {
    ID: i.id,
    Service: i.service,
    Tags: i.tags,
    Address: i.address,
    Meta: i.meta,
    Port: i.port,
    Weights: { Passing: i.weights.passing, Warning: i.weights.warning },
    EnableTagOverride: false,
    CreateIndex: index,
    ModifyIndex: index,
  };
}

/** One entry of `GET /v1/catalog/service/:name` (Consul's flattened ServiceNode); `datacenter` is the instance's own. */
export function catalogEntry(i: Instance, datacenter: string, index: number): unknown {
  return {
    ID: i.nodeId,
    Node: i.node,
    Address: i.nodeAddress,
    Datacenter: datacenter,
    TaggedAddresses: { lan: i.nodeAddress, wan: i.nodeAddress },
    NodeMeta: nodeMeta(i),
    ServiceID: i.id,
    ServiceName: i.service,
    ServiceTags: i.tags,
    ServiceAddress: i.address,
    ServicePort: i.port,
    ServiceMeta: i.meta,
    ServiceWeights: { Passing: i.weights.passing, Warning: i.weights.warning },
    ServiceEnableTagOverride: false,
    CreateIndex: index,
    ModifyIndex: index,
  };
}

/** One value of `GET /v1/agent/services` (keyed by service ID). */
export function agentServiceJson(r: LocalRecord, datacenter: string): unknown {
  const d = r.def;
  return {
    ID: d.id,
    Service: d.name,
    Tags: d.tags,
    Meta: d.meta,
    Port: d.port,
    Address: d.address,
    Weights: { Passing: d.weights.passing, Warning: d.weights.warning },
    EnableTagOverride: d.enableTagOverride,
    Datacenter: datacenter,
  };
}

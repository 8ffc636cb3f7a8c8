/**
 * The frames an agent sends to its session server, and their decoder. The protocol as a whole (the
 * handshake, versions, the path) is described in `agent-link.ts`, which re-exports this file.
 */
import { readDatacenter, WATCH_KEY_RULES } from './datacenter.js';
import { readInstance, SERVICE_NAME_PATTERN, type Instance } from './instance.js';
import { readProtocolVersion } from './rpc.js';
import { readTraceparent } from './trace-context.js';
import {
  Issues,
  decodeObject,
  at,
  readArray,
  readInt,
  readObject,
  readString,
  type Decoded,
} from './validate.js';

/** Most items one publish/unpublish/subscribe frame may carry; senders split larger batches. */
export const MAX_BATCH = 500;

export interface Hello {
  readonly type: 'hello';
  readonly protocolVersion: number;
  /** Stable node ID of the agent (survives restarts). */
  readonly nodeId: string;
  readonly nodeName: string;
  readonly token: string;
  /**
   * The agent's data center (`MESHREG_DATACENTER`). A session of another data center refuses the
   * hello (`wrong_datacenter`, close code 4015). Absent from older agents: then not checked.
   */
  readonly datacenter?: string;
}

/** One registration as the agent holds it; `version` grows with every change the agent makes. */
export interface Registration {
  readonly instance: Instance;
  readonly version: number;
}

export interface Publish {
  readonly type: 'publish';
  readonly registrations: readonly Registration[];
  /** W3C trace context of the change that caused this publish (optional). */
  readonly traceparent?: string;
}

export interface Withdrawal {
  /** Service ID on the agent's node. */
  readonly id: string;
  readonly service: string;
  readonly version: number;
}

export interface Unpublish {
  readonly type: 'unpublish';
  readonly registrations: readonly Withdrawal[];
}

export interface Interest {
  /** A watch key: a service name, or `name@dc` for a federated data center's copy (`datacenter.ts`). */
  readonly service: string;
  /** The datum version the agent already holds (from its cache); omitted when it holds none. */
  readonly knownVersion?: number;
}

export interface Subscribe {
  readonly type: 'subscribe';
  readonly services: readonly Interest[];
}

export interface Unsubscribe {
  readonly type: 'unsubscribe';
  readonly services: readonly string[];
}

/** Subscribes to the list of service names (Consul's `/v1/catalog/services`). */
export interface CatalogSubscribe {
  readonly type: 'catalogSubscribe';
  readonly knownVersion?: number;
}

export interface Ack {
  readonly type: 'ack';
  readonly service: string;
  readonly version: number;
}

/** One acknowledged push (or delta) inside an {@link Acks} frame. */
export interface AckItem {
  readonly service: string;
  readonly version: number;
}

/**
 * Protocol 2: the pushes of one event-loop turn acknowledged together (at most {@link MAX_BATCH}
 * items; a sender splits more). The session accepts it from either version.
 */
export interface Acks {
  readonly type: 'acks';
  readonly acks: readonly AckItem[];
}

export interface Ping {
  readonly type: 'ping';
  readonly sentAt: number;
}

export type AgentFrame =
  Hello | Publish | Unpublish | Subscribe | Unsubscribe | CatalogSubscribe | Ack | Acks | Ping;

// ---- decoding -----------------------------------------------------------------------------------

/** How a service name is read wherever a frame carries one. */
export const SERVICE_RULES = {
  required: true,
  maxLength: 256,
  pattern: SERVICE_NAME_PATTERN,
  patternHint: 'must be a service name',
} as const;

/**
 * Reads a required array of at most {@link MAX_BATCH} objects, each decoded by `item` (which gets the
 * object and its path); every error is kept with its path.
 */
export function readBatch<T>(
  issues: Issues,
  raw: unknown,
  path: string,
  item: (o: Record<string, unknown>, path: string) => T | undefined,
): T[] | undefined {
  return readArray(
    issues,
    raw,
    path,
    (r, p) => {
      const o = readObject(issues, r, p);
      return o === undefined ? undefined : item(o, p);
    },
    { required: true, maxItems: MAX_BATCH },
  );
}

const readVersion = (issues: Issues, raw: unknown, path: string): number | undefined =>
  readInt(issues, raw, path, { required: true, min: 1 });

/** Parses and validates a frame from an agent. */
export function decodeAgentFrame(raw: unknown): Decoded<AgentFrame> {
  return decodeObject(raw, readAgentFrame);
}

function readAgentFrame(issues: Issues, o: Record<string, unknown>): AgentFrame | undefined {
  switch (o['type']) {
    case 'hello':
      return readHello(issues, o);
    case 'publish': {
      const registrations = readBatch(issues, o['registrations'], 'registrations', (ro, p) => {
        const instance = readInstance(issues, ro['instance'], at(p, 'instance'));
        const version = readVersion(issues, ro['version'], at(p, 'version'));
        return instance === undefined || version === undefined ? undefined : { instance, version };
      });
      const traceparent = readTraceparent(issues, o['traceparent'], 'traceparent');
      if (registrations === undefined) return undefined;
      return traceparent === undefined
        ? { type: 'publish', registrations }
        : { type: 'publish', registrations, traceparent };
    }
    case 'unpublish': {
      const registrations = readBatch(issues, o['registrations'], 'registrations', (ro, p) => {
        const id = readString(issues, ro['id'], at(p, 'id'), { required: true, maxLength: 256 });
        const service = readString(issues, ro['service'], at(p, 'service'), SERVICE_RULES);
        const version = readVersion(issues, ro['version'], at(p, 'version'));
        if (id === undefined || service === undefined || version === undefined) return undefined;
        return { id, service, version };
      });
      return registrations && { type: 'unpublish', registrations };
    }
    case 'subscribe': {
      const services = readBatch(issues, o['services'], 'services', (ro, p) => {
        const service = readString(issues, ro['service'], at(p, 'service'), WATCH_KEY_RULES);
        const knownVersion = readInt(issues, ro['knownVersion'], at(p, 'knownVersion'), { min: 0 });
        if (service === undefined) return undefined;
        return knownVersion === undefined ? { service } : { service, knownVersion };
      });
      return services && { type: 'subscribe', services };
    }
    case 'unsubscribe': {
      const services = readArray(
        issues,
        o['services'],
        'services',
        (s, p) => readString(issues, s, p, WATCH_KEY_RULES),
        { required: true, maxItems: MAX_BATCH },
      );
      return services && { type: 'unsubscribe', services };
    }
    case 'catalogSubscribe': {
      const knownVersion = readInt(issues, o['knownVersion'], 'knownVersion', { min: 0 });
      return knownVersion === undefined
        ? { type: 'catalogSubscribe' }
        : { type: 'catalogSubscribe', knownVersion };
    }
    case 'ack': {
      const service = readString(issues, o['service'], 'service', WATCH_KEY_RULES);
      const version = readInt(issues, o['version'], 'version', { required: true });
      return service !== undefined && version !== undefined ? { type: 'ack', service, version } : undefined;
    }
    case 'acks': {
      const acks = readBatch(issues, o['acks'], 'acks', (ao, p) => {
        const service = readString(issues, ao['service'], at(p, 'service'), WATCH_KEY_RULES);
        const version = readInt(issues, ao['version'], at(p, 'version'), { required: true });
        return service === undefined || version === undefined ? undefined : { service, version };
      });
      return acks && { type: 'acks', acks };
    }
    case 'ping': {
      const sentAt = readInt(issues, o['sentAt'], 'sentAt', { required: true });
      return sentAt === undefined ? undefined : { type: 'ping', sentAt };
    }
    default:
      return issues.add(
        'type',
        'must be one of hello, publish, unpublish, subscribe, unsubscribe, catalogSubscribe, ack, acks, ping',
      );
  }
}

function readHello(issues: Issues, o: Record<string, unknown>): Hello | undefined {
  const protocolVersion = readProtocolVersion(issues, o['protocolVersion'], 'protocolVersion');
  const nodeId = readString(issues, o['nodeId'], 'nodeId', { required: true, maxLength: 128 });
  const nodeName = readString(issues, o['nodeName'], 'nodeName', { required: true, maxLength: 256 });
  const token = readString(issues, o['token'], 'token', { maxLength: 4096 }) ?? '';
  const datacenter = readDatacenter(issues, o['datacenter'], 'datacenter');
  if (protocolVersion === undefined || nodeId === undefined || nodeName === undefined) return undefined;
  const hello: Hello = { type: 'hello', protocolVersion, nodeId, nodeName, token };
  return datacenter === undefined ? hello : { ...hello, datacenter };
}

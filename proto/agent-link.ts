/**
 * The agent ⇄ session protocol: JSON text frames over one WebSocket per host.
 *
 * Handshake: the agent's first frame is `hello` (protocol version, node identity, token); the session
 * answers `welcome` or closes with a code from {@link ERROR_TABLE}. After `welcome` the agent re-sends
 * its whole state (publish, subscribe with known versions), then streams changes. The session pushes
 * immutable, versioned snapshots of each subscribed service; the agent acknowledges each by version.
 */
import { readInstance, SERVICE_NAME_PATTERN, type Instance } from './instance.js';
import { readProtocolVersion } from './rpc.js';
import { readTraceparent } from './trace-context.js';
import {
  Issues,
  at,
  isRecord,
  readArray,
  readBool,
  readInt,
  readObject,
  readString,
  type Decoded,
} from './validate.js';

/** Bumped on any incompatible change; the session refuses other versions with close code 4002. */
export const PROTOCOL_VERSION = 1;
/** How close reasons and logs name this protocol. */
export const AGENT_LINK_NAME = 'agent link';
/** URL path of the agent link on a session server. */
export const AGENT_LINK_PATH = '/v1/agent-link';
/** Most items one publish/unpublish/subscribe frame may carry; senders split larger batches. */
export const MAX_BATCH = 500;

// ---- agent → session ----------------------------------------------------------------------------

export interface Hello {
  readonly type: 'hello';
  readonly protocolVersion: number;
  /** Stable node ID of the agent (survives restarts). */
  readonly nodeId: string;
  readonly nodeName: string;
  readonly token: string;
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

export interface Ping {
  readonly type: 'ping';
  readonly sentAt: number;
}

export type AgentFrame =
  Hello | Publish | Unpublish | Subscribe | Unsubscribe | CatalogSubscribe | Ack | Ping;

// ---- session → agent ----------------------------------------------------------------------------

export interface Welcome {
  readonly type: 'welcome';
  readonly protocolVersion: number;
  readonly sessionId: string;
  /** Session servers the agent may fail over to (WebSocket URLs). */
  readonly sessions: readonly string[];
  readonly pingIntervalMs: number;
}

export interface ConfirmResult {
  readonly op: 'publish' | 'unpublish';
  readonly id: string;
  readonly version: number;
  /** Present when the session refused the change (e.g. a blacklisted name). */
  readonly error?: { readonly code: string; readonly message: string };
}

export interface Confirm {
  readonly type: 'confirm';
  readonly results: readonly ConfirmResult[];
}

export interface Push {
  readonly type: 'push';
  readonly service: string;
  /** Datum version; only grows. The agent ignores a push at or below the version it holds. */
  readonly version: number;
  /**
   * False while the data layer is still rebuilding this service after a failure: the list may be
   * missing instances, so the agent adds to what it holds instead of replacing it (push-empty protection).
   */
  readonly complete: boolean;
  readonly instances: readonly Instance[];
}

export interface Catalog {
  readonly type: 'catalog';
  readonly version: number;
  readonly complete: boolean;
  /** Service name → union of its instances' tags. */
  readonly services: Readonly<Record<string, readonly string[]>>;
}

export interface Pong {
  readonly type: 'pong';
  readonly sentAt: number;
}

/** A subscription the session refused (e.g. a blacklisted name); nothing will be pushed for it. */
export interface Refused {
  readonly type: 'refused';
  readonly service: string;
  readonly error: { readonly code: string; readonly message: string };
}

export type SessionFrame = Welcome | Confirm | Push | Catalog | Pong | Refused;

// ---- decoders -----------------------------------------------------------------------------------

const serviceRules = {
  required: true,
  maxLength: 256,
  pattern: SERVICE_NAME_PATTERN,
  patternHint: 'must be a service name',
} as const;

/** Parses and validates a frame from an agent. */
export function decodeAgentFrame(raw: unknown): Decoded<AgentFrame> {
  const issues = new Issues();
  const o = readObject(issues, raw, '');
  if (o === undefined) return issues.result<AgentFrame>(undefined);
  switch (o['type']) {
    case 'hello': {
      const protocolVersion = readProtocolVersion(issues, o['protocolVersion'], 'protocolVersion');
      const nodeId = readString(issues, o['nodeId'], 'nodeId', { required: true, maxLength: 128 });
      const nodeName = readString(issues, o['nodeName'], 'nodeName', { required: true, maxLength: 256 });
      const token = readString(issues, o['token'], 'token', { maxLength: 4096 }) ?? '';
      if (protocolVersion === undefined || nodeId === undefined || nodeName === undefined)
        return issues.result<AgentFrame>(undefined);
      return issues.result<AgentFrame>({ type: 'hello', protocolVersion, nodeId, nodeName, token });
    }
    case 'publish': {
      const registrations = readArray(
        issues,
        o['registrations'],
        'registrations',
        (r, p) => {
          const ro = readObject(issues, r, p);
          if (ro === undefined) return undefined;
          const instance = readInstance(issues, ro['instance'], at(p, 'instance'));
          const version = readInt(issues, ro['version'], at(p, 'version'), { required: true, min: 1 });
          return instance === undefined || version === undefined ? undefined : { instance, version };
        },
        { required: true, maxItems: MAX_BATCH },
      );
      const traceparent = readTraceparent(issues, o['traceparent'], 'traceparent');
      return issues.result<AgentFrame>(
        registrations &&
          (traceparent === undefined
            ? { type: 'publish', registrations }
            : { type: 'publish', registrations, traceparent }),
      );
    }
    case 'unpublish': {
      const registrations = readArray(
        issues,
        o['registrations'],
        'registrations',
        (r, p) => {
          const ro = readObject(issues, r, p);
          if (ro === undefined) return undefined;
          const id = readString(issues, ro['id'], at(p, 'id'), { required: true, maxLength: 256 });
          const service = readString(issues, ro['service'], at(p, 'service'), serviceRules);
          const version = readInt(issues, ro['version'], at(p, 'version'), { required: true, min: 1 });
          if (id === undefined || service === undefined || version === undefined) return undefined;
          return { id, service, version };
        },
        { required: true, maxItems: MAX_BATCH },
      );
      return issues.result<AgentFrame>(registrations && { type: 'unpublish', registrations });
    }
    case 'subscribe': {
      const services = readArray(
        issues,
        o['services'],
        'services',
        (r, p) => {
          const ro = readObject(issues, r, p);
          if (ro === undefined) return undefined;
          const service = readString(issues, ro['service'], at(p, 'service'), serviceRules);
          const knownVersion = readInt(issues, ro['knownVersion'], at(p, 'knownVersion'), { min: 0 });
          if (service === undefined) return undefined;
          return knownVersion === undefined ? { service } : { service, knownVersion };
        },
        { required: true, maxItems: MAX_BATCH },
      );
      return issues.result<AgentFrame>(services && { type: 'subscribe', services });
    }
    case 'unsubscribe': {
      const services = readArray(
        issues,
        o['services'],
        'services',
        (s, p) => readString(issues, s, p, serviceRules),
        {
          required: true,
          maxItems: MAX_BATCH,
        },
      );
      return issues.result<AgentFrame>(services && { type: 'unsubscribe', services });
    }
    case 'catalogSubscribe': {
      const knownVersion = readInt(issues, o['knownVersion'], 'knownVersion', { min: 0 });
      return issues.result<AgentFrame>(
        knownVersion === undefined
          ? { type: 'catalogSubscribe' }
          : { type: 'catalogSubscribe', knownVersion },
      );
    }
    case 'ack': {
      const service = readString(issues, o['service'], 'service', serviceRules);
      const version = readInt(issues, o['version'], 'version', { required: true });
      return issues.result<AgentFrame>(
        service !== undefined && version !== undefined ? { type: 'ack', service, version } : undefined,
      );
    }
    case 'ping': {
      const sentAt = readInt(issues, o['sentAt'], 'sentAt', { required: true });
      return issues.result<AgentFrame>(sentAt === undefined ? undefined : { type: 'ping', sentAt });
    }
    default:
      issues.add(
        'type',
        'must be one of hello, publish, unpublish, subscribe, unsubscribe, catalogSubscribe, ack, ping',
      );
      return issues.result<AgentFrame>(undefined);
  }
}

/** Parses and validates a frame from a session server. */
export function decodeSessionFrame(raw: unknown): Decoded<SessionFrame> {
  const issues = new Issues();
  const o = readObject(issues, raw, '');
  if (o === undefined) return issues.result<SessionFrame>(undefined);
  switch (o['type']) {
    case 'welcome': {
      const protocolVersion = readInt(issues, o['protocolVersion'], 'protocolVersion', {
        required: true,
        min: 1,
      });
      const sessionId = readString(issues, o['sessionId'], 'sessionId', { required: true, maxLength: 256 });
      const sessions =
        readArray(
          issues,
          o['sessions'],
          'sessions',
          (s, p) => readString(issues, s, p, { required: true, maxLength: 512 }),
          {
            maxItems: 256,
          },
        ) ?? [];
      const pingIntervalMs = readInt(issues, o['pingIntervalMs'], 'pingIntervalMs', {
        required: true,
        min: 10,
      });
      if (protocolVersion === undefined || sessionId === undefined || pingIntervalMs === undefined) {
        return issues.result<SessionFrame>(undefined);
      }
      return issues.result<SessionFrame>({
        type: 'welcome',
        protocolVersion,
        sessionId,
        sessions,
        pingIntervalMs,
      });
    }
    case 'confirm': {
      const results = readArray(
        issues,
        o['results'],
        'results',
        (r, p): ConfirmResult | undefined => {
          const ro = readObject(issues, r, p);
          if (ro === undefined) return undefined;
          const op =
            ro['op'] === 'publish' || ro['op'] === 'unpublish'
              ? ro['op']
              : issues.add(at(p, 'op'), 'must be publish or unpublish');
          const id = readString(issues, ro['id'], at(p, 'id'), { required: true, maxLength: 256 });
          const version = readInt(issues, ro['version'], at(p, 'version'), { required: true });
          if (op === undefined || id === undefined || version === undefined) return undefined;
          const err = ro['error'];
          if (isRecord(err)) {
            const code =
              readString(issues, err['code'], at(p, 'error.code'), { required: true, maxLength: 64 }) ?? '';
            const message =
              readString(issues, err['message'], at(p, 'error.message'), { maxLength: 1024 }) ?? '';
            return { op, id, version, error: { code, message } };
          }
          return { op, id, version };
        },
        { required: true, maxItems: MAX_BATCH },
      );
      return issues.result<SessionFrame>(results && { type: 'confirm', results });
    }
    case 'push': {
      const service = readString(issues, o['service'], 'service', serviceRules);
      const version = readInt(issues, o['version'], 'version', { required: true });
      const complete = readBool(issues, o['complete'], 'complete', true);
      const instances = readArray(issues, o['instances'], 'instances', (i, p) => readInstance(issues, i, p), {
        required: true,
        maxItems: 1_000_000,
      });
      if (
        service === undefined ||
        version === undefined ||
        complete === undefined ||
        instances === undefined
      ) {
        return issues.result<SessionFrame>(undefined);
      }
      return issues.result<SessionFrame>({ type: 'push', service, version, complete, instances });
    }
    case 'catalog': {
      const version = readInt(issues, o['version'], 'version', { required: true });
      const complete = readBool(issues, o['complete'], 'complete', true);
      const so = readObject(issues, o['services'], 'services');
      const services: Record<string, string[]> = {};
      if (so !== undefined) {
        for (const [name, tags] of Object.entries(so)) {
          const list = readArray(
            issues,
            tags,
            at('services', name),
            (t, p) => readString(issues, t, p, { maxLength: 256 }),
            {
              maxItems: 4096,
            },
          );
          if (list !== undefined) services[name] = list;
        }
      }
      if (version === undefined || complete === undefined) return issues.result<SessionFrame>(undefined);
      return issues.result<SessionFrame>({ type: 'catalog', version, complete, services });
    }
    case 'pong': {
      const sentAt = readInt(issues, o['sentAt'], 'sentAt', { required: true });
      return issues.result<SessionFrame>(sentAt === undefined ? undefined : { type: 'pong', sentAt });
    }
    case 'refused': {
      const service = readString(issues, o['service'], 'service', serviceRules);
      const eo = readObject(issues, o['error'], 'error');
      const code = readString(issues, eo?.['code'], 'error.code', { required: true, maxLength: 64 });
      const message = readString(issues, eo?.['message'], 'error.message', { maxLength: 1024 }) ?? '';
      if (service === undefined || code === undefined) return issues.result<SessionFrame>(undefined);
      return issues.result<SessionFrame>({ type: 'refused', service, error: { code, message } });
    }
    default:
      issues.add('type', 'must be one of welcome, confirm, push, catalog, pong, refused');
      return issues.result<SessionFrame>(undefined);
  }
}

/** Parses a text frame as JSON; `undefined` when it is not JSON. */
export function parseJsonFrame(data: string): unknown {
  try {
    return JSON.parse(data) as unknown;
  } catch {
    return undefined;
  }
}

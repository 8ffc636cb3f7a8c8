/**
 * Consul's check endpoints: list, register, deregister, and the TTL updates (`pass`, `warn`,
 * `fail` with `?note=`, and `update` with a `{Status, Output}` body). Check IDs in paths arrive
 * URL-encoded (`service%3Aweb-1`); the router decodes them.
 */
import { MeshregError } from '../../proto/errors.js';
import { HEALTH_STATES, type Health } from '../../proto/instance.js';
import { Issues, describe, readOneOf, readString, setOwn } from '../../proto/validate.js';
import type { AgentChecks } from '../checks/agent-checks.js';
import type { CheckSpec } from '../checks/check-definition.js';
import { checkTargetIssues, readCheck } from './consul-check.js';
import { formatDurationMs } from './duration.js';
import type { LocalServices, NodeIdentity } from '../local/local-services.js';
import { foldIfRecord } from './consul-fields.js';
import type { JsonAnswer, JsonRequest, JsonRouter } from '../../proto/runtime/json-router.js';

export interface CheckBackend {
  readonly node: NodeIdentity;
  readonly local: LocalServices;
  readonly checks: AgentChecks;
  /** Persists after a check change made through the API. */
  persist(): Promise<void>;
}

export function addCheckRoutes(router: JsonRouter, b: CheckBackend): void {
  const ttl =
    (status: Health) =>
    async (req: JsonRequest): Promise<JsonAnswer> => {
      b.checks.ttlUpdate(req.params['id'] ?? '', status, req.query.get('note') ?? '');
      await b.persist();
      return { status: 200 };
    };
  router
    .add('GET', '/v1/agent/checks', () => ({ status: 200, body: listChecks(b) }))
    .add('PUT', '/v1/agent/check/register', async (req) => {
      const def = decodeCheckRegistration(b, req.body);
      const refused = await checkTargetIssues([def], b.checks.rules, '');
      if (refused.length > 0)
        throw new MeshregError('invalid_argument', `Invalid check definition: ${describe(refused)}`, {
          fields: refused,
        });
      if (!b.checks.registerCheck(def))
        throw new MeshregError('not_found', "the check's service no longer exists");
      await b.persist();
      return { status: 200 };
    })
    .add('PUT', '/v1/agent/check/deregister/:id', async (req) => {
      b.checks.deregisterCheck(req.params['id'] ?? '');
      await b.persist();
      return { status: 200 };
    })
    .add('PUT', '/v1/agent/check/pass/:id', ttl('passing'))
    .add('PUT', '/v1/agent/check/warn/:id', ttl('warning'))
    .add('PUT', '/v1/agent/check/fail/:id', ttl('critical'))
    .add('PUT', '/v1/agent/check/update/:id', async (req) => {
      const f = foldIfRecord(req.body);
      if (f === undefined)
        throw new MeshregError('invalid_argument', 'body must be an object with Status', {
          fields: [{ path: '(body)', message: 'must be an object' }],
        });
      const issues = new Issues();
      const status = readOneOf(issues, f.get('status'), 'Status', HEALTH_STATES, true);
      const output = readString(issues, f.get('output'), 'Output', { maxLength: 1 << 20 }) ?? '';
      if (status === undefined || !issues.empty)
        throw new MeshregError('invalid_argument', 'Invalid check update', { fields: issues.list });
      b.checks.ttlUpdate(req.params['id'] ?? '', status, output);
      await b.persist();
      return { status: 200 };
    });
}

/** A standalone check: 404 when it names an unknown service, 400 naming every bad field. */
function decodeCheckRegistration(b: CheckBackend, raw: unknown): CheckSpec {
  const given = foldIfRecord(raw)?.get('serviceid');
  const serviceId = typeof given === 'string' ? given : '';
  const record = serviceId === '' ? undefined : b.local.get(serviceId);
  if (serviceId !== '' && record === undefined) {
    throw new MeshregError('not_found', `ServiceID "${serviceId}" does not exist`, {
      fields: [{ path: 'ServiceID', message: 'unknown service' }],
    });
  }
  const issues = new Issues();
  const ctx = { serviceId, serviceName: record?.def.name ?? '', index: 0, count: 1 };
  const def = readCheck(issues, raw, '', ctx, b.checks.rules);
  if (def === undefined || !issues.empty) {
    throw new MeshregError('invalid_argument', `Invalid check definition: ${describe(issues.list)}`, {
      fields: issues.list,
    });
  }
  return def;
}

function listChecks(b: CheckBackend): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of b.checks.list()) {
    const svc = c.def.serviceId === '' ? undefined : b.local.get(c.def.serviceId);
    setOwn(out, c.def.id, {
      Node: b.node.node,
      CheckID: c.def.id,
      Name: c.def.name,
      Status: c.status,
      Notes: c.def.notes,
      Output: c.output,
      ServiceID: c.def.serviceId,
      ServiceName: svc?.def.name ?? '',
      ServiceTags: svc?.def.tags ?? [],
      Type: c.def.kind,
      Interval: c.def.kind === 'ttl' ? '' : formatDurationMs(c.def.intervalMs),
      Timeout: c.def.kind === 'ttl' ? '' : formatDurationMs(c.def.timeoutMs),
    });
  }
  return out;
}

/**
 * The agent's checks, tied to its local registrations: decodes check definitions (400 naming each
 * field), runs them, writes their results into the service records (so health travels with the
 * instance to every subscriber), and restores definitions and last statuses after a restart.
 */
import { MeshregError } from '../../proto/errors.js';
import type { Health } from '../../proto/instance.js';
import type { Logger } from '../../proto/runtime/log.js';
import { Issues, describe, isRecord } from '../../proto/validate.js';
import type { RegisterRequest } from '../consul/consul-register.js';
import type { LocalServices, PersistedState } from '../local/local-services.js';
import { foldKeys } from '../consul/consul-fields.js';
import { readCheck, type CheckDefinition, type CheckRules } from './check-definition.js';
import { CheckRunner, type CheckStatus } from './check-runner.js';

export interface AgentChecksOptions extends CheckRules {
  readonly reapIntervalMs: number;
  readonly logger: Logger;
  /** Deregisters a service the reaper found critical for too long. */
  readonly deregister: (serviceId: string) => Promise<void>;
}

type RawCheck = Readonly<Record<string, unknown>>;

export class AgentChecks {
  readonly #runner: CheckRunner;
  readonly #local: LocalServices;
  readonly #rules: CheckRules;
  /** Node-level check definitions (no service), as sent. */
  readonly #nodeChecks = new Map<string, RawCheck>();

  constructor(local: LocalServices, opts: AgentChecksOptions) {
    this.#local = local;
    this.#rules = opts;
    this.#runner = new CheckRunner({
      reapIntervalMs: opts.reapIntervalMs,
      logger: opts.logger,
      onChange: (serviceId) => {
        const ids = serviceId === '' ? local.list().map((r) => r.def.id) : [serviceId];
        for (const id of ids) local.setChecks(id, this.#runner.states(id));
      },
      onReap: (serviceId) => {
        opts.deregister(serviceId).catch((err: unknown) => {
          opts.logger.error('reaping a critical service failed', { service: serviceId, err });
        });
      },
    });
  }

  /** Decodes a registration's checks; throws `invalid_argument` naming every bad field. */
  decodeServiceChecks(req: RegisterRequest): CheckDefinition[] {
    const issues = new Issues();
    const count = req.checks.length;
    const defs = req.checks.flatMap((raw, index) => {
      const path = count === 1 ? 'Check' : `Checks[${index}]`;
      const d = readCheck(
        issues,
        raw,
        path,
        { serviceId: req.def.id, serviceName: req.def.name, index, count },
        this.#rules,
      );
      return d === undefined ? [] : [d];
    });
    if (!issues.empty)
      throw new MeshregError('invalid_argument', `Invalid check definition: ${describe(issues.list)}`, {
        fields: issues.list,
      });
    return defs;
  }

  /**
   * Starts a service's checks. Without `replace`, checks the service had that are not in `defs` stay
   * (Consul's default); with it they are removed. Returns the definitions to persist with the service.
   */
  applyServiceChecks(serviceId: string, defs: readonly CheckDefinition[], replace: boolean): RawCheck[] {
    const ids = new Set(defs.map((d) => d.id));
    const kept = replace
      ? []
      : (this.#local.get(serviceId)?.checkDefinitions ?? []).filter(
          (raw) => !ids.has(String(raw['CheckID'])),
        );
    if (replace) for (const id of this.#runner.idsOf(serviceId)) if (!ids.has(id)) this.#runner.remove(id);
    for (const d of defs) this.#runner.add(d);
    return [...kept, ...defs.map((d) => ({ ...d.raw, CheckID: d.id }))];
  }

  /** Current check results of a service (its own and the node's). */
  states(serviceId: string): ReturnType<CheckRunner['states']> {
    return this.#runner.states(serviceId);
  }

  removeService(serviceId: string): void {
    this.#runner.removeService(serviceId);
  }

  /** `PUT /v1/agent/check/register`: a check for an existing local service, or a node-level one. */
  registerCheck(raw: unknown): CheckDefinition {
    const issues = new Issues();
    const given = isRecord(raw) ? foldKeys(raw).get('serviceid') : undefined;
    const serviceId = typeof given === 'string' ? given : '';
    const record = serviceId === '' ? undefined : this.#local.get(serviceId);
    if (serviceId !== '' && record === undefined) {
      throw new MeshregError('not_found', `ServiceID "${serviceId}" does not exist`, {
        fields: [{ path: 'ServiceID', message: 'unknown service' }],
      });
    }
    const def = readCheck(
      issues,
      raw,
      '',
      { serviceId, serviceName: record?.def.name ?? '', index: 0, count: 1 },
      this.#rules,
    );
    if (def === undefined || !issues.empty) {
      throw new MeshregError('invalid_argument', `Invalid check definition: ${describe(issues.list)}`, {
        fields: issues.list,
      });
    }
    this.#runner.add(def);
    if (record === undefined) this.#nodeChecks.set(def.id, { ...def.raw, CheckID: def.id });
    else {
      const others = record.checkDefinitions.filter((r) => String(r['CheckID']) !== def.id);
      this.#local.register(record.def, this.#runner.states(serviceId), [
        ...others,
        { ...def.raw, CheckID: def.id },
      ]);
    }
    return def;
  }

  deregisterCheck(id: string): void {
    const st = this.#runner.get(id);
    if (st === undefined) return;
    this.#runner.remove(id);
    this.#nodeChecks.delete(id);
    const record = st.def.serviceId === '' ? undefined : this.#local.get(st.def.serviceId);
    if (record !== undefined) {
      this.#local.register(
        record.def,
        this.#runner.states(record.def.id),
        record.checkDefinitions.filter((r) => String(r['CheckID']) !== id),
      );
    }
  }

  ttlUpdate(id: string, status: Health, output: string): void {
    this.#runner.ttlUpdate(id, status, output);
  }

  list(): CheckStatus[] {
    return this.#runner.list();
  }

  /** What is persisted besides the service records. */
  persisted(): Pick<PersistedState, 'nodeChecks' | 'checkStatus'> {
    const checkStatus: Record<string, { status: Health; output: string }> = {};
    for (const c of this.#runner.list()) checkStatus[c.def.id] = { status: c.status, output: c.output };
    return { nodeChecks: [...this.#nodeChecks.values()], checkStatus };
  }

  /** Starts the checks of restored records with their last statuses. Bad definitions are logged and skipped. */
  restore(state: PersistedState, log: Logger): void {
    const start = (raw: RawCheck, serviceId: string, serviceName: string): void => {
      const issues = new Issues();
      const def = readCheck(issues, raw, '', { serviceId, serviceName, index: 0, count: 1 }, this.#rules);
      if (def === undefined) {
        log.error('skipped a persisted check that no longer decodes', {
          service: serviceId,
          reason: describe(issues.list),
        });
        return;
      }
      this.#runner.add(def, state.checkStatus[def.id]);
      if (serviceId === '') this.#nodeChecks.set(def.id, raw);
    };
    for (const raw of state.nodeChecks) start(raw, '', '');
    for (const r of state.services) for (const raw of r.checkDefinitions) start(raw, r.def.id, r.def.name);
  }

  close(): void {
    this.#runner.close();
  }
}

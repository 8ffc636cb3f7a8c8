/**
 * The agent's checks, tied to its local registrations: runs checks already decoded at the edge,
 * writes their results into the service records (so health travels with the instance to every
 * subscriber), and restores definitions and last statuses after a restart (decoded again by the
 * same decoder; one that no longer decodes is logged and skipped).
 */
import type { Health } from '../../proto/instance.js';
import type { Logger } from '../../proto/runtime/log.js';
import { Issues, describe } from '../../proto/validate.js';
import { readCheck } from '../consul/consul-check.js';
import type { LocalServices, PersistedState } from '../local/local-services.js';
import type { CheckRules, CheckSpec } from './check-definition.js';
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
    this.#rules = {
      minIntervalMs: opts.minIntervalMs,
      minDeregisterMs: opts.minDeregisterMs,
      ...(opts.net === undefined ? {} : { net: opts.net }),
    };
    this.#runner = new CheckRunner({
      ...(opts.net === undefined ? {} : { net: opts.net }),
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

  /**
   * Starts a service's checks. Without `replace`, checks the service had that are not in `defs` stay
   * (Consul's default); with it they are removed. Returns the definitions to persist with the service.
   */
  applyServiceChecks(serviceId: string, defs: readonly CheckSpec[], replace: boolean): RawCheck[] {
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

  /**
   * `PUT /v1/agent/check/register`: a check for an existing local service, or a node-level one.
   * False (and nothing changes) when the check names a service this agent does not hold.
   */
  registerCheck(def: CheckSpec): boolean {
    const record = def.serviceId === '' ? undefined : this.#local.get(def.serviceId);
    if (def.serviceId !== '' && record === undefined) return false;
    this.#runner.add(def);
    if (record === undefined) this.#nodeChecks.set(def.id, { ...def.raw, CheckID: def.id });
    else {
      const others = record.checkDefinitions.filter((r) => String(r['CheckID']) !== def.id);
      this.#local.register(record.def, this.#runner.states(def.serviceId), [
        ...others,
        { ...def.raw, CheckID: def.id },
      ]);
    }
    return true;
  }

  /** The rules the edge decodes checks with. */
  get rules(): CheckRules {
    return this.#rules;
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

  /**
   * What is persisted besides the service records: the node-level checks and their statuses. A
   * service check's status travels in its record's `checks`, so a change costs one record.
   */
  persisted(): Pick<PersistedState, 'nodeChecks' | 'checkStatus'> {
    const checkStatus: Record<string, { status: Health; output: string }> = {};
    for (const id of this.#nodeChecks.keys()) {
      const c = this.#runner.get(id);
      if (c !== undefined) checkStatus[id] = { status: c.status, output: c.output };
    }
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

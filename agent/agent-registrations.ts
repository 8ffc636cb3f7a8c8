/**
 * The agent's registration writes: a register traced as a span, a deregister that first publishes
 * the instance as draining for the drain period, and the graceful leave that withdraws everything
 * at once. Each write is persisted before it returns.
 */
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Logger } from '../proto/runtime/log.js';
import { tracer } from '../proto/runtime/telemetry.js';
import type { AgentChecks } from './checks/agent-checks.js';
import type { RegisterRequest } from './consul/consul-register.js';
import type { LocalServices } from './local/local-services.js';
import type { LocalStore } from './local/local-store.js';

/** Longest a graceful leave waits for the session to confirm the withdrawals before stopping. */
const LEAVE_CONFIRM_MS = 5_000;

export interface AgentRegistrationsOptions {
  readonly local: LocalServices;
  readonly checks: AgentChecks;
  readonly store: LocalStore;
  /** How long a deregistered instance is published as draining first (0: removed at once). */
  readonly drainMs: number;
  /** Whether the upstream link is open (a leave waits for confirmations only then). */
  readonly linkOpen: () => boolean;
  /** Called once a graceful leave is done: the process should stop. */
  readonly left: (why: string) => void;
  readonly log: Logger;
}

export class AgentRegistrations {
  readonly #opts: AgentRegistrationsOptions;
  readonly #drains = new Set<NodeJS.Timeout>();

  constructor(opts: AgentRegistrationsOptions) {
    this.#opts = opts;
  }

  async register(req: RegisterRequest, replaceExistingChecks = false): Promise<void> {
    const { checks, local, store } = this.#opts;
    // The span is active while the local change is published, so the frame carries its trace.
    await tracer().startActiveSpan(
      'agent.register',
      {
        kind: SpanKind.SERVER,
        attributes: { 'meshreg.service': req.def.name, 'meshreg.service_id': req.def.id },
      },
      async (span) => {
        try {
          const persisted = checks.applyServiceChecks(req.def.id, req.checks, replaceExistingChecks);
          local.register(req.def, checks.states(req.def.id), persisted);
          await store.flush();
        } catch (err) {
          span.setStatus({ code: SpanStatusCode.ERROR });
          throw err;
        } finally {
          span.end();
        }
      },
    );
  }

  /**
   * A graceful leave (Consul's `PUT /v1/agent/leave`): every registration of this host is withdrawn
   * at once, without the drain period, so the session gets one batch and watchers see one change;
   * answers once the session confirmed (or after {@link LEAVE_CONFIRM_MS}), then the process stops.
   */
  async leave(): Promise<void> {
    const { checks, local, store } = this.#opts;
    for (const r of local.list()) {
      checks.removeService(r.def.id);
      local.deregister(r.def.id);
    }
    await store.flush();
    const deadline = performance.now() + LEAVE_CONFIRM_MS;
    while (local.tombstones().length > 0 && this.#opts.linkOpen() && performance.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    this.#opts.log.info('left: registrations withdrawn', { unconfirmed: local.tombstones().length });
    // After the answer is written: the stop closes the HTTP server.
    setImmediate(() => {
      this.#opts.left('agent left');
    });
  }

  async deregister(id: string): Promise<void> {
    const { checks, local, store } = this.#opts;
    const record = local.get(id);
    if (record === undefined) return;
    checks.removeService(id);
    const drainMs = this.#opts.drainMs;
    if (drainMs > 0 && record.draining !== true) {
      // Published as draining first (EDS: DRAINING; Consul: critical), removed when the period ends.
      local.markDraining(id);
      await store.flush();
      const timer = setTimeout(() => {
        this.#drains.delete(timer);
        if (local.get(id)?.draining === true && local.deregister(id) !== undefined) void store.flush();
      }, drainMs);
      timer.unref();
      this.#drains.add(timer);
      return;
    }
    if (local.deregister(id) !== undefined) await store.flush();
  }

  /** Cancels the pending ends of drain periods (the agent is stopping). */
  stop(): void {
    for (const t of this.#drains) clearTimeout(t);
  }
}

/**
 * Runs the agent's health checks. HTTP and TCP checks probe every interval (first run at a random
 * point within the interval, so checks registered together do not fire together); results pass
 * through Consul's flap damping. TTL checks turn critical unless refreshed in time. A reaper
 * deregisters services whose check stayed critical past DeregisterCriticalServiceAfter.
 *
 * `onChange(serviceId)` fires on a status change ('' for a node-level check). Output-only changes
 * are kept for `/v1/agent/checks` but not announced: like Consul, which defers output-only syncs,
 * a check whose output changes every probe must not cause a registry write every probe.
 */
import { MeshregError } from '../../proto/errors.js';
import type { CheckState, Health } from '../../proto/instance.js';
import type { Logger } from '../../proto/runtime/log.js';
import type { CheckSpec, ProbedCheckSpec, TtlCheckSpec } from './check-definition.js';
import { probeHttp, type ProbeResult } from './check-http.js';
import { OPEN_NET_POLICY, type CheckNetPolicy } from './check-net-policy.js';
import { probeTcp } from './check-tcp.js';
import { StatusHandler } from './status-handler.js';

export interface CheckRunnerOptions {
  readonly reapIntervalMs: number;
  readonly logger: Logger;
  readonly onChange: (serviceId: string) => void;
  readonly onReap: (serviceId: string) => void;
  /** Where probes may connect, which redirects they follow, how much body they read. */
  readonly net?: CheckNetPolicy;
}

export interface CheckStatus {
  readonly def: CheckSpec;
  readonly status: Health;
  readonly output: string;
}

interface Running {
  def: CheckSpec;
  status: Health;
  output: string;
  handler: StatusHandler;
  timer: NodeJS.Timeout | undefined;
  criticalSince: number | undefined;
  stopped: boolean;
}

export class CheckRunner {
  readonly #checks = new Map<string, Running>();
  readonly #opts: CheckRunnerOptions;
  readonly #reaper: NodeJS.Timeout;

  constructor(opts: CheckRunnerOptions) {
    this.#opts = opts;
    this.#reaper = setInterval(() => {
      this.#reap();
    }, opts.reapIntervalMs);
    this.#reaper.unref();
  }

  /** Adds or replaces a check. Re-registering an existing ID keeps its status (no flap). */
  add(def: CheckSpec, restored?: { status: Health; output: string }): void {
    const old = this.#checks.get(def.id);
    if (old !== undefined) this.#stop(old);
    const status = restored?.status ?? old?.status ?? def.initialStatus;
    const r: Running = {
      def,
      status,
      output: restored?.output ?? old?.output ?? '',
      handler: new StatusHandler(def),
      timer: undefined,
      criticalSince: status === 'critical' ? (old?.criticalSince ?? Date.now()) : undefined,
      stopped: false,
    };
    this.#checks.set(def.id, r);
    this.#start(r, def);
    if (old === undefined || old.status !== status || old.def.serviceId !== def.serviceId)
      this.#opts.onChange(def.serviceId);
  }

  remove(id: string): boolean {
    const r = this.#checks.get(id);
    if (r === undefined) return false;
    this.#stop(r);
    this.#checks.delete(id);
    this.#opts.onChange(r.def.serviceId);
    return true;
  }

  removeService(serviceId: string): void {
    for (const r of [...this.#checks.values()]) {
      if (r.def.serviceId !== serviceId) continue;
      this.#stop(r);
      this.#checks.delete(r.def.id);
    }
  }

  get(id: string): CheckStatus | undefined {
    const r = this.#checks.get(id);
    return r === undefined ? undefined : { def: r.def, status: r.status, output: r.output };
  }

  list(): CheckStatus[] {
    return [...this.#checks.values()].map((r) => ({ def: r.def, status: r.status, output: r.output }));
  }

  idsOf(serviceId: string): string[] {
    return [...this.#checks.values()].filter((r) => r.def.serviceId === serviceId).map((r) => r.def.id);
  }

  /** A service's checks plus the node's checks, as published with its instance. */
  states(serviceId: string): CheckState[] {
    const out: CheckState[] = [];
    for (const r of this.#checks.values()) {
      if (r.def.serviceId !== serviceId && r.def.serviceId !== '') continue;
      out.push({ id: r.def.id, name: r.def.name, status: r.status, output: r.output, type: r.def.kind });
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  /** `PUT /v1/agent/check/{pass,warn,fail,update}`: sets a TTL check and restarts its clock. */
  ttlUpdate(id: string, status: Health, output: string): void {
    const r = this.#checks.get(id);
    if (r === undefined) throw new MeshregError('not_found', `unknown check ID: ${id}`);
    const def = r.def;
    if (def.kind !== 'ttl') throw new MeshregError('invalid_argument', `check ${id} is not a TTL check`);
    this.#set(r, status, output.slice(0, def.outputMaxSize));
    this.#armTtl(r, def);
  }

  close(): void {
    clearInterval(this.#reaper);
    for (const r of this.#checks.values()) this.#stop(r);
  }

  /** A TTL check starts its clock; a probed one first fires at a random point of its interval. */
  #start(r: Running, def: CheckSpec): void {
    switch (def.kind) {
      case 'ttl':
        this.#armTtl(r, def);
        return;
      case 'http':
      case 'tcp':
        this.#schedule(r, def, Math.random() * def.intervalMs);
        return;
      default: {
        const never: never = def;
        throw new Error(`unknown check kind: ${JSON.stringify(never)}`);
      }
    }
  }

  #schedule(r: Running, def: ProbedCheckSpec, delayMs: number): void {
    r.timer = setTimeout(() => {
      void this.#probe(r, def);
    }, delayMs);
    r.timer.unref();
  }

  async #probe(r: Running, def: ProbedCheckSpec): Promise<void> {
    let result: ProbeResult;
    try {
      result = await probe(def, this.#opts.net ?? OPEN_NET_POLICY);
    } catch (err) {
      // A probe must never take the agent down: whatever went wrong is the check's result.
      result = {
        status: 'critical',
        output: `check failed: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
    if (r.stopped) return;
    const next = r.handler.next(result.status);
    if (next !== undefined) this.#set(r, next, result.output);
    else r.output = result.output;
    this.#schedule(r, def, def.intervalMs);
  }

  #armTtl(r: Running, def: TtlCheckSpec): void {
    clearTimeout(r.timer);
    r.timer = setTimeout(() => {
      if (!r.stopped)
        this.#set(r, 'critical', `TTL expired (last output: ${r.output})`.slice(0, def.outputMaxSize));
    }, def.ttlMs);
    r.timer.unref();
  }

  #set(r: Running, status: Health, output: string): void {
    const changed = r.status !== status;
    r.status = status;
    r.output = output;
    if (status === 'critical') r.criticalSince ??= Date.now();
    else r.criticalSince = undefined;
    if (changed) {
      this.#opts.logger.info('check status changed', {
        check: r.def.id,
        service: r.def.serviceId,
        status,
        output: output.slice(0, 200),
      });
      this.#opts.onChange(r.def.serviceId);
    }
  }

  #stop(r: Running): void {
    r.stopped = true;
    clearTimeout(r.timer);
  }

  #reap(): void {
    const now = Date.now();
    const reaped = new Set<string>();
    for (const r of this.#checks.values()) {
      const after = r.def.deregisterAfterMs;
      if (after === undefined || r.criticalSince === undefined || r.def.serviceId === '') continue;
      if (now - r.criticalSince >= after) reaped.add(r.def.serviceId);
    }
    for (const serviceId of reaped) {
      this.#opts.logger.warn(
        'deregistering a service critical for longer than DeregisterCriticalServiceAfter',
        { service: serviceId },
      );
      this.#opts.onReap(serviceId);
    }
  }
}

/** One probe of a check that has one. */
function probe(def: ProbedCheckSpec, net: CheckNetPolicy): Promise<ProbeResult> {
  switch (def.kind) {
    case 'http':
      return probeHttp(def.http, def.timeoutMs, def.outputMaxSize, net);
    case 'tcp':
      return probeTcp(def.tcp, def.timeoutMs, net.targets);
    default: {
      const never: never = def;
      throw new Error(`unknown probe kind: ${JSON.stringify(never)}`);
    }
  }
}

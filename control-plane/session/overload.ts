/**
 * When a session is overloaded, and what it does about it: backpressure instead of timeouts.
 *
 * The session samples its own event-loop lag (how late its check timer fires, and the loop
 * monitor's current lateness, averaged over the last few checks so that one pause such as the
 * start-up's module loading is not an overload, while a long stall or a loop late at every turn
 * is) and its queues: writes waiting for data servers (a slow data server
 * shows here, as answers that come back slowly), pushes sent and not yet acknowledged, and the
 * bytes queued for agents. Past any threshold it is overloaded: it tells agents to slow down (a
 * `slow_down` frame, at most once per half pause), `/health` says `degraded` with the reason, and
 * the state holds for one pause after the last sample over a threshold, so it does not flap.
 */
import type { Logger } from '../../proto/runtime/log.js';
import { loopMonitor } from '../../proto/runtime/loop-monitor.js';
import { observeGauges } from '../../proto/runtime/telemetry.js';

/** Thresholds past which a session is overloaded (each `MESHREG_SESSION_OVERLOAD_*`). */
export interface OverloadThresholds {
  readonly lagMs: number;
  readonly pendingWrites: number;
  readonly pushPending: number;
  readonly queuedBytes: number;
  /** The pause asked of agents in each `slow_down`. */
  readonly retryAfterMs: number;
}

/** Defaults of {@link OverloadThresholds} (the README's variable table lists them). */
export const DEFAULT_OVERLOAD: OverloadThresholds = Object.freeze({
  lagMs: 500,
  pendingWrites: 50_000,
  pushPending: 50_000,
  queuedBytes: 256 * 1024 * 1024,
  retryAfterMs: 2000,
});

/** One reading of what the thresholds judge. */
export interface OverloadSample {
  readonly lagMs: number;
  readonly pendingWrites: number;
  readonly pushPending: number;
  readonly queuedBytes: number;
}

/** Why `s` is an overload under `t` (every threshold passed, in words), or undefined when it is not. */
export function overloadReason(s: OverloadSample, t: OverloadThresholds): string | undefined {
  const why: string[] = [];
  if (s.lagMs > t.lagMs) why.push(`loop lag ${Math.round(s.lagMs)} ms`);
  if (s.pendingWrites > t.pendingWrites) why.push(`${s.pendingWrites} writes pending`);
  if (s.pushPending > t.pushPending) why.push(`${s.pushPending} pushes unacknowledged`);
  if (s.queuedBytes > t.queuedBytes) why.push(`${s.queuedBytes} bytes queued for agents`);
  return why.length === 0 ? undefined : why.join(', ');
}

/** An agent connection, as the guard sees it. */
export interface OverloadTarget {
  readonly queuedBytes: number;
  /** Sends a `slow_down` if the agent understands it; whether it was sent. */
  slowDown(retryAfterMs: number, reason: string): boolean;
}

/** What the guard needs of its session (the lag is the guard's own measure). */
export interface OverloadHost {
  connections(): Iterable<OverloadTarget>;
  /** Writes waiting for data servers. */
  pendingWrites(): number;
  /** Pushes sent and not yet acknowledged. */
  pushPending(): number;
}

/** What `/health` shows of the guard. */
export interface OverloadStatus {
  readonly overloaded: boolean;
  readonly reason?: string;
  readonly lagMs: number;
  readonly queuedBytes: number;
  readonly slowDownsSent: number;
  readonly slowConsumerCloses: number;
}

export class OverloadGuard {
  readonly #t: OverloadThresholds;
  readonly #host: OverloadHost;
  readonly #log: Logger;
  readonly #checkMs: number;
  readonly #timer: NodeJS.Timeout;
  #lastTick = performance.now();
  #last: OverloadSample = { lagMs: 0, pendingWrites: 0, pushPending: 0, queuedBytes: 0 };
  /** Moving average of the lateness of the checks (weight 1/4 for each new one). */
  #lagAverage = 0;
  #reason: string | undefined;
  /** The state holds until then (performance time), one pause after the last sample over a threshold. */
  #holdUntil = 0;
  #lastSlowDown = -Infinity;
  readonly #unregister: () => void;
  readonly counts = { slowDownsSent: 0, slowConsumerCloses: 0 };

  constructor(sessionId: string, t: OverloadThresholds, logger: Logger, host: OverloadHost) {
    this.#t = t;
    this.#host = host;
    this.#log = logger;
    this.#checkMs = Math.max(50, Math.min(250, Math.floor(t.retryAfterMs / 4)));
    loopMonitor.start();
    this.#timer = setInterval(() => {
      this.check();
    }, this.#checkMs);
    this.#timer.unref();
    this.#unregister = registerOverloadMetrics(sessionId, this);
  }

  /** Undefined unless overloaded; then why. */
  get reason(): string | undefined {
    return this.#reason;
  }

  status(): OverloadStatus {
    return {
      overloaded: this.#reason !== undefined,
      ...(this.#reason === undefined ? {} : { reason: this.#reason }),
      lagMs: Math.round(this.#last.lagMs),
      queuedBytes: this.#last.queuedBytes,
      ...this.counts,
    };
  }

  /** The session's `/health` fields: `overload`, and `status: 'degraded'` with a reason while overloaded. */
  health(): Record<string, unknown> {
    const overload = this.status();
    if (overload.reason === undefined) return { overload };
    return { overload, status: 'degraded', reason: `overloaded: ${overload.reason}` };
  }

  /** Samples and acts; the timer calls it, tests may too. */
  check(now = performance.now()): void {
    const late = Math.max(0, now - this.#lastTick - this.#checkMs, loopMonitor.delay().currentMs);
    this.#lagAverage += (late - this.#lagAverage) / 4;
    this.#lastTick = now;
    let queuedBytes = 0;
    for (const c of this.#host.connections()) queuedBytes += c.queuedBytes;
    const sample: OverloadSample = {
      lagMs: this.#lagAverage,
      pendingWrites: this.#host.pendingWrites(),
      pushPending: this.#host.pushPending(),
      queuedBytes,
    };
    this.#last = sample;
    const reason = overloadReason(sample, this.#t);
    const was = this.#reason;
    if (reason !== undefined) {
      this.#reason = reason;
      this.#holdUntil = now + this.#t.retryAfterMs;
    } else if (now >= this.#holdUntil) {
      this.#reason = undefined;
    }
    if (was === undefined && this.#reason !== undefined)
      this.#log.warn('session overloaded; asking agents to slow down', { reason: this.#reason });
    else if (was !== undefined && this.#reason === undefined) this.#log.info('session no longer overloaded');
    if (this.#reason === undefined || now - this.#lastSlowDown < this.#t.retryAfterMs / 2) return;
    this.#lastSlowDown = now;
    for (const c of this.#host.connections())
      if (c.slowDown(this.#t.retryAfterMs, this.#reason)) this.counts.slowDownsSent++;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#unregister();
    loopMonitor.stop();
  }
}

function registerOverloadMetrics(sessionId: string, g: OverloadGuard): () => void {
  return observeGauges(
    [
      {
        name: 'meshreg.session.queued_bytes',
        description: 'Bytes queued for agents and not yet written (all connections)',
        read: (o) => o(g.status().queuedBytes),
      },
      {
        name: 'meshreg.session.overloaded',
        description: '1 while the session is overloaded and asks agents to slow down',
        read: (o) => o(g.reason === undefined ? 0 : 1),
      },
      {
        name: 'meshreg.session.slow_down',
        description: 'slow_down frames sent to agents',
        counter: true,
        read: (o) => o(g.counts.slowDownsSent),
      },
      {
        name: 'meshreg.session.slow_consumer_closes',
        description: 'Agent connections closed for not reading (slow_consumer, 4014)',
        counter: true,
        read: (o) => o(g.counts.slowConsumerCloses),
      },
    ],
    { role: 'session', session_id: sessionId },
  );
}

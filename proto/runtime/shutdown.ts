/**
 * The phases of a graceful stop, against one deadline. Each role runs its steps through
 * {@link ShutdownPhases.run}, which logs the step's duration; the entry point asks
 * {@link ShutdownPhases.pending} what is still running when the deadline passes, so the log says what
 * a process that had to give up was waiting for.
 */
import { boundedInt } from './env-bounds.js';
import type { Logger } from './log.js';

/**
 * `MESHREG_SHUTDOWN_TIMEOUT_MS`, read by every role: the whole graceful stop's bound, by default
 * well below Kubernetes' 30 s grace period so the process exits before it is killed.
 */
export const SHUTDOWN_TIMEOUT_VAR = {
  name: 'MESHREG_SHUTDOWN_TIMEOUT_MS',
  default: '20000',
  doc: 'Bound of a graceful stop (SIGTERM) of every role (100..3600000); past it the process logs what was pending and exits 1.',
} as const;

/** Reads {@link SHUTDOWN_TIMEOUT_VAR}. */
export function readShutdownTimeoutMs(env: NodeJS.ProcessEnv): number {
  return boundedInt(env, 'MESHREG_SHUTDOWN_TIMEOUT_MS', 20_000, 100, 3_600_000);
}

/** Time a waiting step leaves for the steps after it (closing ports, flushing files). */
export const SHUTDOWN_RESERVE_MS = 1000;

/** One step still running: its name and how long it has been running. */
export interface PendingPhase {
  readonly phase: string;
  readonly runningMs: number;
}

export class ShutdownPhases {
  readonly #log: Logger;
  readonly #deadline: number;
  readonly #pending = new Map<number, { phase: string; started: number }>();
  #next = 0;

  /** `timeoutMs` from now is the deadline every step shares. */
  constructor(logger: Logger, timeoutMs: number) {
    this.#log = logger;
    this.#deadline = performance.now() + timeoutMs;
  }

  /** Time left before the deadline (0 once it passed). */
  remainingMs(): number {
    return Math.max(0, this.#deadline - performance.now());
  }

  /**
   * Time a step may spend waiting while leaving `reserveMs` for the steps after it: at most
   * `wantedMs`, never negative.
   */
  budgetMs(wantedMs: number, reserveMs: number): number {
    return Math.max(0, Math.min(wantedMs, this.remainingMs() - reserveMs));
  }

  /** Runs `step` as phase `phase`, logging its duration (and its failure, which it rethrows). */
  async run<T>(phase: string, step: () => Promise<T> | T): Promise<T> {
    const key = this.#next++;
    const started = performance.now();
    this.#pending.set(key, { phase, started });
    let ok = false;
    try {
      const out = await step();
      ok = true;
      return out;
    } finally {
      this.#pending.delete(key);
      this.#log.info('shutdown phase', {
        phase,
        durationMs: Math.round(performance.now() - started),
        ...(ok ? {} : { failed: true }),
      });
    }
  }

  /** The steps still running, oldest first. */
  pending(): PendingPhase[] {
    const now = performance.now();
    return [...this.#pending.values()].map((p) => ({
      phase: p.phase,
      runningMs: Math.round(now - p.started),
    }));
  }
}

/** Waits until `done()` holds, polling every `everyMs`, for at most `timeoutMs`; whether it held. */
export async function waitUntil(done: () => boolean, timeoutMs: number, everyMs = 10): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return true;
}

/**
 * Consul's flap damping for a check's results. The counters start at their thresholds so the first
 * result applies at once; a passing or warning result counts as a success and clears the failures;
 * a critical result counts as a failure and clears the successes. A success result applies once
 * successes reach SuccessBeforePassing; failures turn the check warning at FailuresBeforeWarning and
 * critical at FailuresBeforeCritical.
 */
import type { Health } from '../../proto/instance.js';

export interface Thresholds {
  readonly successBeforePassing: number;
  readonly failuresBeforeWarning: number;
  readonly failuresBeforeCritical: number;
}

export class StatusHandler {
  #successes: number;
  #failures: number;

  constructor(private readonly t: Thresholds) {
    this.#successes = t.successBeforePassing;
    this.#failures = t.failuresBeforeCritical;
  }

  /** The status to apply for a new result, or `undefined` to keep the current one. */
  next(result: Health): Health | undefined {
    if (result === 'passing' || result === 'warning') {
      this.#successes++;
      this.#failures = 0;
      return this.#successes >= this.t.successBeforePassing ? result : undefined;
    }
    this.#failures++;
    this.#successes = 0;
    if (this.#failures >= this.t.failuresBeforeCritical) return 'critical';
    if (this.#failures >= this.t.failuresBeforeWarning) return 'warning';
    return undefined;
  }
}

/**
 * The event-loop delay metric, `meshreg_loop_delay_ms{quantile}` (p50, p99, max of the loop
 * monitor's histogram), registered once per process however many roles or agents in it ask:
 * registration is reference-counted, like the monitor it reads.
 */
import { loopMonitor } from './loop-monitor.js';
import { observeGauges } from './telemetry.js';

let users = 0;
let unregister: (() => void) | undefined;

/**
 * Registers the metric (and starts the loop monitor) for one user; returns that user's release,
 * which is idempotent. The metric goes when the last user releases it.
 */
export function registerLoopDelayMetric(): () => void {
  users += 1;
  if (users === 1) {
    loopMonitor.start();
    unregister = observeGauges([
      {
        name: 'meshreg.loop_delay_ms',
        description: "This process's event-loop delay (p50, p99, max since start)",
        read: (o) => {
          const d = loopMonitor.delay();
          o(d.p50Ms, { quantile: 'p50' });
          o(d.p99Ms, { quantile: 'p99' });
          o(d.maxMs, { quantile: 'max' });
        },
      },
    ]);
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    users -= 1;
    if (users > 0) return;
    unregister?.();
    unregister = undefined;
    loopMonitor.stop();
  };
}

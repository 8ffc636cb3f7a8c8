/**
 * The agent's metrics, read from its state when collected: local registrations and how many the
 * control plane has not confirmed, the upstream link's state, how old the cached view is, what
 * pushes did, and the results of the health checks attached to local registrations.
 */
import { HEALTH_STATES } from '../proto/instance.js';
import { registerLoopDelayMetric } from '../proto/runtime/loop-metrics.js';
import { observeGauges, type GaugeDef } from '../proto/runtime/telemetry.js';
import type { LocalServices } from './local/local-services.js';
import type { AgentSync } from './upstream/sync.js';
import type { ServiceView } from './view/service-view.js';

const LINK_STATES = ['idle', 'connecting', 'open', 'backoff', 'closed'] as const;

/** The upstream sync's counters, each a monotonic counter metric. */
const SYNC_COUNTERS = [
  ['pushesApplied', 'meshreg.agent.pushes_applied', 'Pushes applied to the view'],
  ['pushesIgnored', 'meshreg.agent.pushes_ignored', 'Pushes older than the view (ignored)'],
  ['confirms', 'meshreg.agent.confirms', 'Changes confirmed by the control plane'],
  ['refusals', 'meshreg.agent.refusals', 'Changes refused by the control plane'],
  ['slowDowns', 'meshreg.agent.slow_downs', 'slow_down frames received from an overloaded session'],
] as const;

/** Registers the agent's gauges and counters; returns their unregistration. */
export function registerAgentMetrics(
  node: string,
  s: { local: LocalServices; view: ServiceView; sync: AgentSync },
): () => void {
  const counter = (name: string, description: string, pick: () => number): GaugeDef => ({
    name,
    description,
    counter: true,
    read: (o) => o(pick()),
  });
  const releaseLoopMetric = registerLoopDelayMetric();
  const unregister = observeGauges(
    [
      {
        name: 'meshreg.agent.local_services',
        description: 'Registrations on this host',
        read: (o) => o(s.local.size),
      },
      {
        name: 'meshreg.agent.unsynced',
        description: 'Changes the control plane has not confirmed yet (registrations and removals)',
        read: (o) => o(s.local.list().filter((r) => !r.synced).length + s.local.tombstones().length),
      },
      {
        name: 'meshreg.agent.upstream_state',
        description: '1 for the state the upstream link is in, 0 for the others',
        read: (o) => {
          for (const st of LINK_STATES) o(s.sync.state === st ? 1 : 0, { state: st });
        },
      },
      {
        name: 'meshreg.agent.cache_age_seconds',
        description: 'How long the cached view has gone without the control plane (0 while connected)',
        read: (o) => o(Math.round(s.sync.status().lastContactMs / 1000)),
      },
      {
        name: 'meshreg.agent.watched_services',
        description: 'Services watched by local apps',
        read: (o) => o(s.view.watched().length),
      },
      {
        name: 'meshreg.agent.checks',
        description: 'Health checks of local registrations by status',
        read: (o) => {
          const by = new Map<string, number>(HEALTH_STATES.map((h) => [h, 0]));
          for (const r of s.local.list())
            for (const c of r.checks) by.set(c.status, (by.get(c.status) ?? 0) + 1);
          for (const [status, n] of by) o(n, { status });
        },
      },
      ...SYNC_COUNTERS.map(([key, name, description]) =>
        counter(name, description, () => s.sync.counters[key]),
      ),
    ],
    { role: 'agent', node },
  );
  return () => {
    unregister();
    releaseLoopMetric();
  };
}

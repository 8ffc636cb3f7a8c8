/**
 * The agent's probe endpoints for an orchestrator (Kubernetes `livenessProbe`, `readinessProbe`,
 * `startupProbe`). Neither looks at the control plane: an agent that lost its session keeps answering
 * reads from its cache, so taking it out of service then would cut local apps off from the registry
 * (Consul's readiness asks for a leader and does exactly that during an outage).
 */
import type { JsonAnswer, JsonRouter } from '../proto/runtime/json-router.js';

/** Path of the liveness probe: 200 whenever the event loop gets to answer. */
export const LIVE_PATH = '/v1/meshreg/live';
/** Path of the readiness (and startup) probe: 200 once the local API serves its restored state. */
export const READY_PATH = '/v1/meshreg/ready';

/** What the readiness probe asks of the agent. */
export interface ProbeSource {
  /** True once local registrations and the cached views are loaded and the API is bound. */
  ready(): boolean;
}

const LIVE: JsonAnswer = { status: 200, body: { status: 'ok' } };

/**
 * Adds `GET /v1/meshreg/live` and `GET /v1/meshreg/ready` to the agent's router. Liveness costs one
 * constant answer (no allocation beyond the response); readiness answers 503 `starting` until
 * `source.ready()` and 200 after, whatever the upstream link's state.
 */
export function addProbeRoutes(router: JsonRouter, source: ProbeSource): void {
  router.add('GET', LIVE_PATH, () => LIVE);
  router.add('GET', READY_PATH, () =>
    source.ready()
      ? { status: 200, body: { status: 'ready' } }
      : { status: 503, body: { status: 'starting' } },
  );
}

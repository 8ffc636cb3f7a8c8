/**
 * Small builders for the records unit tests pass around, so each test states only what it is about.
 */
import type { CheckState, Instance } from '../../proto/instance.js';
import { setImmediate as nextImmediate } from 'node:timers/promises';

/** A valid instance of `service` on `nodeId`; `overrides` win. */
export function makeInstance(overrides: Partial<Instance> & Pick<Instance, 'id' | 'service'>): Instance {
  return {
    nodeId: 'node-b',
    node: 'b',
    nodeAddress: '10.0.0.2',
    address: '',
    port: 8080,
    tags: [],
    meta: {},
    weights: { passing: 1, warning: 1 },
    health: 'passing',
    checks: [],
    zone: '',
    region: '',
    ...overrides,
  };
}

/** A check result with the given status. */
export function makeCheck(id: string, status: CheckState['status']): CheckState {
  return { id, name: id, status, output: '', type: 'ttl' };
}

/**
 * Lets queued immediates and the promise chains they start run to the end. Uses the promise form of
 * setImmediate, which node:test mock timers leave alone unless asked to mock `setImmediate`.
 */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await nextImmediate();
}

/**
 * A subscriber that speaks the agent protocol directly and records every push it receives, applying
 * each to a real agent ServiceView (the agent's merge rules) so tests can check what a subscriber saw.
 * It speaks protocol 1 unless told otherwise; in protocol 2 it applies deltas onto the version they
 * were made from (and subscribes again with the version it holds when the base differs) and
 * acknowledges with `acks` frames.
 */
import WebSocket from 'ws';
import { decodeSessionFrame, type Delta, type Push } from '../../proto/agent-link.js';
import { registrationId, type Instance } from '../../proto/instance.js';
import { ServiceView } from '../../agent/view/service-view.js';

export interface Observation {
  readonly service: string;
  readonly version: number;
  readonly complete: boolean;
  readonly pushed: number;
  /** What carried it: a whole datum or a delta (protocol 2). */
  readonly kind: 'push' | 'delta';
  /** Instances in the merged view after applying the push. */
  readonly visible: number;
}

export class RawSubscriber {
  readonly observations: Observation[] = [];
  readonly view: ServiceView;
  readonly #ws: WebSocket;
  readonly #protocolVersion: number;
  #closed = false;
  /** Deltas not applied because their base was not the version held. */
  deltasRefused = 0;

  constructor(url: string, token: string, services: readonly string[], protocolVersion = 1) {
    this.#protocolVersion = protocolVersion;
    const nodeId = `monitor-${Math.random().toString(36).slice(2)}`;
    this.view = new ServiceView(nodeId, {
      onWatch: () => undefined,
      onWatchCatalog: () => undefined,
      localInstances: () => [],
      onChanged: () => undefined,
    });
    for (const s of services) this.view.ensure(s);
    this.#ws = new WebSocket(url);
    this.#ws.on('open', () => {
      this.#ws.send(
        JSON.stringify({
          type: 'hello',
          protocolVersion,
          nodeId,
          nodeName: 'monitor',
          token,
        }),
      );
    });
    this.#ws.on('message', (data: Buffer) => {
      const d = decodeSessionFrame(JSON.parse(data.toString('utf8')));
      if (!d.ok) throw new Error('monitor got an invalid frame');
      const f = d.value;
      if (f.type === 'welcome') {
        this.#ws.send(
          JSON.stringify({ type: 'subscribe', services: services.map((service) => ({ service })) }),
        );
      } else if (f.type === 'push') {
        this.#onPush(f, 'push');
      } else if (f.type === 'delta') {
        this.#onDelta(f);
      }
    });
    this.#ws.on('close', () => {
      this.#closed = true;
    });
    this.#ws.on('error', () => undefined);
  }

  get closed(): boolean {
    return this.#closed;
  }

  count(service: string): number {
    return this.view.instances(service).length;
  }

  close(): void {
    this.#ws.close();
  }

  #onPush(p: Push, kind: 'push' | 'delta', pushed = p.instances.length): void {
    this.view.applyPush(p);
    this.observations.push({
      service: p.service,
      version: p.version,
      complete: p.complete,
      pushed,
      kind,
      visible: this.count(p.service),
    });
    const ack = { service: p.service, version: p.version };
    this.#ws.send(
      JSON.stringify(this.#protocolVersion >= 2 ? { type: 'acks', acks: [ack] } : { type: 'ack', ...ack }),
    );
  }

  #onDelta(d: Delta): void {
    const held = this.view.get(d.service);
    if (held === undefined) return;
    if (!held.received || held.version !== d.base) {
      this.deltasRefused++;
      const interest = held.received
        ? { service: d.service, knownVersion: held.version }
        : { service: d.service };
      this.#ws.send(JSON.stringify({ type: 'subscribe', services: [interest] }));
      return;
    }
    const next = new Map<string, Instance>(held.remote);
    for (const id of d.removed) next.delete(id);
    for (const i of d.upserts) next.set(registrationId(i), i);
    const push: Push = {
      type: 'push',
      service: d.service,
      version: d.version,
      complete: d.complete,
      instances: [...next.values()],
    };
    this.#onPush(push, 'delta', d.upserts.length + d.removed.length);
  }
}

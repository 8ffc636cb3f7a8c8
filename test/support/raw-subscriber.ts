/**
 * A subscriber that speaks the agent protocol directly and records every push it receives, applying
 * each to a real agent ServiceView (the agent's merge rules) so tests can check what a subscriber saw.
 */
import WebSocket from 'ws';
import { PROTOCOL_VERSION, decodeSessionFrame, type Push } from '../../proto/agent-link.js';
import { ServiceView } from '../../agent/view/service-view.js';

export interface Observation {
  readonly service: string;
  readonly version: number;
  readonly complete: boolean;
  readonly pushed: number;
  /** Instances in the merged view after applying the push. */
  readonly visible: number;
}

export class RawSubscriber {
  readonly observations: Observation[] = [];
  readonly view: ServiceView;
  readonly #ws: WebSocket;
  #closed = false;

  constructor(url: string, token: string, services: readonly string[]) {
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
          protocolVersion: PROTOCOL_VERSION,
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
        this.#onPush(f);
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

  #onPush(p: Push): void {
    this.view.applyPush(p);
    this.observations.push({
      service: p.service,
      version: p.version,
      complete: p.complete,
      pushed: p.instances.length,
      visible: this.count(p.service),
    });
    this.#ws.send(JSON.stringify({ type: 'ack', service: p.service, version: p.version }));
  }
}

/**
 * Puts meta's console together from what the meta node holds: the {@link MetaConsole} over the
 * node's members and store, its routes (with every write audited) and its live event stream.
 */
import type { ConsoleLeader } from '../../proto/console.js';
import { CONSOLE_LINK } from '../../proto/console-link.js';
import type { Logger } from '../../proto/runtime/log.js';
import type { SlotTable } from '../../proto/slot-table.js';
import type { AdminRoute, OpsOptions } from '../admin/ops-http.js';
import type { ProtectionHost } from '../link/protection-ops.js';
import type { RpcPeer } from '../link/rpc-peer.js';
import type { MemberView } from '../meta/meta-ops.js';
import type { MetaStore } from '../meta/meta-store.js';
import type { SwitchBoard } from '../meta/switch-board.js';
import { ConsoleEvents } from './console-events.js';
import { consoleRoutes, withAudit } from './console-routes.js';
import type { ErrorRing } from './error-ring.js';
import { MetaConsole } from './meta-console.js';

/** The console's settings on meta. */
export interface ConsoleOptions {
  /** Console event streams open at once, at most. */
  readonly maxStreams: number;
  readonly heartbeatMs?: number;
  readonly pollMs?: number;
}

export const DEFAULT_CONSOLE: ConsoleOptions = Object.freeze({ maxStreams: 32 });

/** What the console reads of the meta node. */
export interface MetaInternals {
  readonly meta: {
    readonly url: string;
    readonly table: SlotTable | undefined;
    readonly switches: SwitchBoard;
    members(): MemberView[];
  };
  peer(id: string): RpcPeer | undefined;
  store(): MetaStore | undefined;
  /** The store's revision of the table last read (what arrangement is fenced on). */
  revision(): string;
  readonly protection: ProtectionHost;
  readonly errors: ErrorRing;
  readonly ops: Omit<OpsOptions, 'logger'>;
  readonly callTimeoutMs: number;
  readonly options: ConsoleOptions | undefined;
  readonly logger: Logger;
}

/** Meta's console: its data, routes and event stream. */
export class MetaConsoleRole {
  readonly console: MetaConsole;
  readonly events: ConsoleEvents;
  readonly #in: MetaInternals;

  constructor(inner: MetaInternals) {
    this.#in = inner;
    const { meta } = inner;
    this.console = new MetaConsole({
      get table() {
        return meta.table;
      },
      get switchState() {
        return meta.switches.state;
      },
      get url() {
        return meta.url;
      },
      members: () => meta.members(),
      memberPeer: (id) => {
        const p = inner.peer(id);
        return p?.isOpen === true ? p : undefined;
      },
      consoleCallMs: Math.min(2000, inner.callTimeoutMs),
      leader: () => this.#leader(),
      protection: () => {
        const s = inner.protection.protection.status();
        return { role: 'meta', id: meta.url, active: s.active, held: s.held.length };
      },
      errors: () => inner.errors.recent(),
      sendDrained: () => {
        for (const m of meta.members()) if (m.role === 'data') this.joined('data', inner.peer(m.id));
      },
    });
    const opts = inner.options ?? DEFAULT_CONSOLE;
    this.events = new ConsoleEvents(this.console, {
      maxStreams: opts.maxStreams,
      heartbeatMs: opts.heartbeatMs ?? 15_000,
      pollMs: opts.pollMs ?? 250,
      adminAuth: inner.ops.adminAuth,
      adminRemote: inner.ops.adminRemote,
      logger: inner.logger,
    });
  }

  /** Meta's admin routes with writes audited, and the console's own. */
  routes(metaRoutes: readonly AdminRoute[]): AdminRoute[] {
    return [...withAudit(this.console, metaRoutes), ...consoleRoutes(this.console)];
  }

  /** A member linked: a data server is told the drained set. */
  joined(role: string, peer: RpcPeer | undefined): void {
    if (role === 'data') peer?.emit(CONSOLE_LINK.drained, this.console.drained.state);
  }

  close(): void {
    this.events.close();
  }

  #leader(): ConsoleLeader {
    const store = this.#in.store();
    return {
      self: store?.leader === true,
      id: store?.leader === true ? this.#in.meta.url : '',
      fencingRevision: this.#in.revision(),
      store: store?.kind ?? 'none',
      storeHealthy: store?.healthy !== false,
    };
  }
}

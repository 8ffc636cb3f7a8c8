/**
 * Connection accounting of one role port: how many sockets each client address holds, and how many
 * sockets are still in their handshake (TCP accepted, TLS, HTTP or WebSocket upgrade under way, no
 * accepted hello yet). A socket over either bound is refused before anything is read from it, so
 * one address cannot take every connection and idle half-open sockets cannot pile up.
 *
 * Every admitted socket gets a {@link ConnTicket}; its `handshakeDone` and `closed` may be called
 * any number of times in any order, and the counts stay exact (the unit test drives random
 * sequences of them).
 */
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { rateLimitedLog } from '../../proto/runtime/http-edge.js';
import type { Logger } from '../../proto/runtime/log.js';
import { observeGauges } from '../../proto/runtime/telemetry.js';

/** Bounds of one role port; loopback clients count like any other address. */
export interface ConnLimitOptions {
  /** Open sockets one client address may hold at once. */
  readonly maxPerIp: number;
  /** Sockets that may be in their handshake at once, over all addresses. */
  readonly maxPending: number;
}

/** Why a socket was refused: its address holds too many, or too many handshakes are under way. */
export type RefusalReason = 'per_ip' | 'pending';

/** An admitted socket's place in the counts. */
export interface ConnTicket {
  /** The socket reached an accepted hello (or an ordinary HTTP request): it stops counting as pending. */
  handshakeDone(): void;
  /** The socket closed: it stops counting at all. */
  closed(): void;
  /** True until `handshakeDone` or `closed`. */
  readonly pending: boolean;
}

export type Admission =
  { readonly ok: true; readonly ticket: ConnTicket } | { readonly ok: false; readonly reason: RefusalReason };

/** What the counters hold now, and what was refused since the start. */
export interface ConnCounts {
  readonly open: number;
  readonly pending: number;
  readonly addresses: number;
  readonly refused: Readonly<Record<RefusalReason, number>>;
}

export class ConnLimits {
  readonly #opts: ConnLimitOptions;
  readonly #perIp = new Map<string, number>();
  #open = 0;
  #pending = 0;
  readonly #refused: Record<RefusalReason, number> = { per_ip: 0, pending: 0 };

  constructor(opts: ConnLimitOptions) {
    if (opts.maxPerIp < 1 || opts.maxPending < 1) throw new Error('connection limits must be at least 1');
    this.#opts = opts;
  }

  /** Admits a new socket from `ip`, or says why not (and counts the refusal). */
  admit(ip: string): Admission {
    const held = this.#perIp.get(ip) ?? 0;
    let reason: RefusalReason | undefined;
    if (held >= this.#opts.maxPerIp) reason = 'per_ip';
    else if (this.#pending >= this.#opts.maxPending) reason = 'pending';
    if (reason !== undefined) {
      this.#refused[reason]++;
      return { ok: false, reason };
    }
    this.#perIp.set(ip, held + 1);
    this.#open++;
    this.#pending++;
    return { ok: true, ticket: this.#ticket(ip) };
  }

  counts(): ConnCounts {
    return {
      open: this.#open,
      pending: this.#pending,
      addresses: this.#perIp.size,
      refused: { ...this.#refused },
    };
  }

  /** Sockets `ip` holds now. */
  heldBy(ip: string): number {
    return this.#perIp.get(ip) ?? 0;
  }

  #ticket(ip: string): ConnTicket {
    let pending = true;
    let open = true;
    const endPending = (): void => {
      if (!pending) return;
      pending = false;
      this.#pending--;
    };
    return {
      handshakeDone: endPending,
      closed: () => {
        if (!open) return;
        open = false;
        endPending();
        this.#open--;
        const left = (this.#perIp.get(ip) ?? 1) - 1;
        if (left === 0) this.#perIp.delete(ip);
        else this.#perIp.set(ip, left);
      },
      get pending() {
        return pending;
      },
    };
  }
}

/** What {@link guardConnections} needs besides the limits. */
export interface GuardOptions extends ConnLimitOptions {
  /** `role` attribute of the metrics, and the log lines' context. */
  readonly role: string;
  readonly logger: Logger;
  /** A socket still in its handshake after this long is closed, so its place is freed. */
  readonly handshakeTimeoutMs: number;
}

/** The hooks a server gives the guard: when a socket's handshake is over, and stopping. */
export interface ConnGuard {
  /** `socket` (the request's or upgrade's: TLS or plain) reached an accepted hello or a request. */
  handshakeDone(socket: Duplex): void;
  readonly limits: ConnLimits;
  stop(): void;
}

/**
 * Applies {@link ConnLimits} to every TCP connection of `server` (for a TLS server, before the TLS
 * handshake): a refused socket is destroyed at once, counted in `meshreg.link.connections_refused`
 * and logged (rate-limited). An ordinary HTTP request ends its socket's handshake by itself; the
 * owner calls {@link ConnGuard.handshakeDone} for upgrades once their hello is accepted.
 */
export function guardConnections(server: net.Server, opts: GuardOptions): ConnGuard {
  const limits = new ConnLimits(opts);
  // A TLS socket and its TCP socket share the peer's address and port, which identify the connection.
  const tickets = new Map<string, ConnTicket>();
  const keyOf = (socket: Duplex): string => {
    // An HTTP server's sockets are net.Sockets (TLSSockets under TLS), typed as Duplex for upgrades.
    const s = socket as Partial<Pick<net.Socket, 'remoteAddress' | 'remotePort'>>;
    return `${s.remoteAddress ?? ''}|${String(s.remotePort ?? '')}`;
  };
  const log = rateLimitedLog(opts.logger);
  const onConnection = (socket: net.Socket): void => {
    const ip = socket.remoteAddress ?? '';
    const admitted = limits.admit(ip);
    if (!admitted.ok) {
      log.warn('connection refused', {
        role: opts.role,
        reason: admitted.reason,
        ip,
        held: limits.heldBy(ip),
      });
      socket.destroy();
      return;
    }
    const key = keyOf(socket);
    const ticket = admitted.ticket;
    tickets.set(key, ticket);
    const timer = setTimeout(() => {
      if (!ticket.pending) return;
      log.debug('handshake not finished in time; closed', { role: opts.role, ip });
      socket.destroy();
    }, opts.handshakeTimeoutMs);
    timer.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      ticket.closed();
      if (tickets.get(key) === ticket) tickets.delete(key);
    });
  };
  const done: ConnGuard['handshakeDone'] = (socket) => {
    tickets.get(keyOf(socket))?.handshakeDone();
  };
  const onRequest = (req: { readonly socket: net.Socket }): void => {
    done(req.socket);
  };
  server.on('connection', onConnection);
  // First, so that a request's own handler (a /metrics scrape) already sees its socket as served.
  server.prependListener('request', onRequest);
  const unregister = observeGauges(
    [
      {
        name: 'meshreg.link.connections',
        description: 'Open sockets on the role port',
        read: (o) => {
          o(limits.counts().open);
        },
      },
      {
        name: 'meshreg.link.handshakes_pending',
        description: 'Sockets on the role port not yet past their handshake (no accepted hello)',
        read: (o) => {
          o(limits.counts().pending);
        },
      },
      {
        name: 'meshreg.link.connections_refused',
        description: 'Sockets closed at accept: over the per-address or the pending-handshake bound',
        counter: true,
        read: (o) => {
          const r = limits.counts().refused;
          o(r.per_ip, { reason: 'per_ip' });
          o(r.pending, { reason: 'pending' });
        },
      },
    ],
    { role: opts.role },
  );
  return {
    handshakeDone: done,
    limits,
    stop: () => {
      server.off('connection', onConnection);
      server.off('request', onRequest);
      unregister();
    },
  };
}

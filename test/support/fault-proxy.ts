/**
 * A TCP proxy for fault injection, in the test process: put it between any two meshreg parts
 * (agent⇄session, session⇄data, data⇄data, member⇄meta, meta⇄etcd) by giving the client the proxy's
 * address, then break the link from the test, each direction on its own:
 *
 * - `blackhole(dir)`: a partition. Bytes and closes in that direction are held, not lost, the way TCP
 *   keeps retransmitting through a partition; new connections are accepted but not dialled onward.
 *   `heal()` delivers what was held, in order (bounded: past `maxHeldBytes` the sender is paused).
 *   The parts themselves decide, by their own timeouts, whether the link died meanwhile.
 * - `delay(ms, dir)`: every chunk arrives `ms` later, order kept.
 * - `throttle(bytesPerSec, dir)`: at most that rate.
 * - `cut()`: resets every open connection (both ends see the socket die), as a crashed middlebox does.
 * - `refuse(on)`: new connections are closed at once (a process that is down, a port firewalled).
 *
 * `up` is client → target, `down` is target → client.
 */
import net from 'node:net';

export type Direction = 'up' | 'down' | 'both';

interface DirectionFaults {
  blackhole: boolean;
  delayMs: number;
  bytesPerSec: number;
}

const NO_FAULTS: DirectionFaults = { blackhole: false, delayMs: 0, bytesPerSec: 0 };

/** One direction of one connection: a queue that applies the current faults of its direction. */
class Pipe {
  readonly #from: net.Socket;
  readonly #to: () => net.Socket | undefined;
  readonly #faults: () => DirectionFaults;
  readonly #maxHeld: number;
  readonly #queue: { chunk: Buffer | null; due: number }[] = [];
  #held = 0;
  #nextFree = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Called when everything queued, the end included, has been delivered. */
  onIdle: () => void = () => undefined;
  bytes = 0;

  constructor(
    from: net.Socket,
    to: () => net.Socket | undefined,
    faults: () => DirectionFaults,
    maxHeld: number,
  ) {
    this.#from = from;
    this.#to = to;
    this.#faults = faults;
    this.#maxHeld = maxHeld;
    from.on('data', (chunk: Buffer) => {
      this.#push(chunk);
    });
    from.on('end', () => {
      this.#push(null);
    });
  }

  /** Re-reads the faults (after a change) and sends what is due. */
  kick(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#drain();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#queue.length = 0;
  }

  get empty(): boolean {
    return this.#queue.length === 0;
  }

  #push(chunk: Buffer | null): void {
    const f = this.#faults();
    const now = Date.now();
    let due = now + f.delayMs;
    if (chunk !== null && f.bytesPerSec > 0) {
      // A chunk leaves once its bytes have had time to pass at the allowed rate.
      due = Math.max(due, this.#nextFree) + (chunk.length * 1000) / f.bytesPerSec;
      this.#nextFree = due;
    }
    this.#queue.push({ chunk, due });
    if (chunk !== null) this.#held += chunk.length;
    if (this.#held > this.#maxHeld) this.#from.pause();
    this.#drain();
  }

  #drain(): void {
    const to = this.#to();
    if (to === undefined || this.#faults().blackhole || this.#timer !== undefined) return;
    const now = Date.now();
    while (this.#queue.length > 0) {
      const head = this.#queue[0];
      if (head === undefined) break;
      if (head.due > now) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#drain();
        }, head.due - now);
        return;
      }
      this.#queue.shift();
      if (head.chunk === null) {
        to.end();
        continue;
      }
      this.#held -= head.chunk.length;
      this.bytes += head.chunk.length;
      if (!to.destroyed) to.write(head.chunk);
    }
    if (this.#held <= this.#maxHeld && this.#from.isPaused()) this.#from.resume();
    this.onIdle();
  }
}

interface Connection {
  readonly client: net.Socket;
  target: net.Socket | undefined;
  readonly up: Pipe;
  readonly down: Pipe | undefined;
  dial(): void;
}

export interface FaultProxyOptions {
  /** Address to listen on (default 127.0.0.1, port 0). */
  readonly host?: string;
  readonly port?: number;
  /** Bytes held per direction of a connection before its sender is paused. */
  readonly maxHeldBytes?: number;
}

export class FaultProxy {
  readonly #server: net.Server;
  readonly #target: { host: string; port: number };
  readonly #conns = new Set<Connection>();
  readonly #maxHeld: number;
  #up: DirectionFaults = { ...NO_FAULTS };
  #down: DirectionFaults = { ...NO_FAULTS };
  #refusing = false;
  /** Connections accepted since the start. */
  accepted = 0;

  private constructor(server: net.Server, target: { host: string; port: number }, maxHeld: number) {
    this.#server = server;
    this.#target = target;
    this.#maxHeld = maxHeld;
    server.on('connection', (client) => {
      this.#accept(client);
    });
  }

  /** Starts a proxy to `target` ("host:port", or a URL whose host and port are used). */
  static async start(target: string, opts: FaultProxyOptions = {}): Promise<FaultProxy> {
    const t = parseTarget(target);
    const server = net.createServer({ allowHalfOpen: true });
    const proxy = new FaultProxy(server, t, opts.maxHeldBytes ?? 16 * 1024 * 1024);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return proxy;
  }

  get host(): string {
    return (this.#server.address() as net.AddressInfo).address;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** "host:port" of the proxy. */
  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** `url` with its host and port replaced by the proxy's (for ws://, http:// URLs). */
  rewrite(url: string): string {
    const u = new URL(url);
    u.host = this.address;
    return u.toString().replace(/\/$/, url.endsWith('/') ? '/' : '');
  }

  /** Open connections (both ends up). */
  get connections(): number {
    return this.#conns.size;
  }

  /** Bytes delivered so far in each direction, over every connection. */
  bytes(): { up: number; down: number } {
    let up = 0;
    let down = 0;
    for (const c of this.#conns) {
      up += c.up.bytes;
      down += c.down?.bytes ?? 0;
    }
    return { up, down };
  }

  blackhole(dir: Direction = 'both'): void {
    this.#set(dir, { blackhole: true });
  }

  delay(ms: number, dir: Direction = 'both'): void {
    this.#set(dir, { delayMs: ms });
  }

  throttle(bytesPerSec: number, dir: Direction = 'both'): void {
    this.#set(dir, { bytesPerSec });
  }

  refuse(on = true): void {
    this.#refusing = on;
  }

  /** Resets every open connection. */
  cut(): void {
    for (const c of [...this.#conns]) this.#drop(c, true);
  }

  /** Clears every fault; held bytes are delivered. */
  heal(): void {
    this.#up = { ...NO_FAULTS };
    this.#down = { ...NO_FAULTS };
    this.#refusing = false;
    this.#kickAll();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #set(dir: Direction, change: Partial<DirectionFaults>): void {
    if (dir !== 'down') this.#up = { ...this.#up, ...change };
    if (dir !== 'up') this.#down = { ...this.#down, ...change };
    this.#kickAll();
  }

  #kickAll(): void {
    for (const c of this.#conns) {
      if (c.target === undefined && !this.#up.blackhole) c.dial();
      c.up.kick();
      c.down?.kick();
    }
  }

  #accept(client: net.Socket): void {
    this.accepted += 1;
    client.setNoDelay(true);
    if (this.#refusing) {
      client.resetAndDestroy();
      return;
    }
    const conn: Connection = {
      client,
      target: undefined,
      up: new Pipe(
        client,
        () => conn.target,
        () => this.#up,
        this.#maxHeld,
      ),
      down: undefined,
      dial: () => {
        if (conn.target !== undefined) return;
        const target = net.connect({ port: this.#target.port, host: this.#target.host, allowHalfOpen: true });
        target.setNoDelay(true);
        conn.target = target;
        const down = new Pipe(
          target,
          () => client,
          () => this.#down,
          this.#maxHeld,
        );
        down.onIdle = settle;
        (conn as { down: Pipe | undefined }).down = down;
        target.on('connect', () => conn.up.kick());
        target.on('error', () => this.#drop(conn));
        target.on('close', settle);
      },
    };
    // A side that closed cleanly: drop the pair once what it sent has been delivered to the other.
    const settle = (): void => {
      const t = conn.target;
      const clientGone = client.destroyed && conn.up.empty;
      const targetGone = t !== undefined && t.destroyed && (conn.down?.empty ?? true);
      if (clientGone || targetGone) this.#drop(conn);
    };
    conn.up.onIdle = settle;
    this.#conns.add(conn);
    client.on('error', () => this.#drop(conn));
    client.on('close', settle);
    // Through a partition the connection is accepted but nothing reaches the target until it heals.
    if (!this.#up.blackhole) conn.dial();
  }

  #drop(c: Connection, reset = false): void {
    if (!this.#conns.delete(c)) return;
    c.up.stop();
    c.down?.stop();
    end(c.client, reset);
    if (c.target !== undefined) end(c.target, reset);
  }
}

/**
 * Closes a socket, with a reset (RST) when asked and the socket is fully open. (A reset of a
 * half-closed socket made Node's loop spin in our runs, so those are simply destroyed.)
 */
function end(socket: net.Socket, reset: boolean): void {
  if (socket.destroyed) return;
  if (reset && !socket.readableEnded && !socket.writableEnded) socket.resetAndDestroy();
  else socket.destroy();
}

function parseTarget(target: string): { host: string; port: number } {
  if (target.includes('://')) {
    const u = new URL(target);
    return { host: u.hostname, port: Number(u.port) };
  }
  const i = target.lastIndexOf(':');
  return { host: target.slice(0, i), port: Number(target.slice(i + 1)) };
}

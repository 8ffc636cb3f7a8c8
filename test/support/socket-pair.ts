/**
 * Two in-memory {@link LinkSocket}s joined back to back: what one sends, the other receives, in
 * order, on a later macrotask (like a network, never synchronously inside `send`). Tests drive link
 * classes with it instead of a real WebSocket, and can hold delivery to see what queues up.
 */
import { EventEmitter } from 'node:events';
import {
  SOCKET_CLOSED,
  SOCKET_CLOSING,
  SOCKET_CONNECTING,
  SOCKET_OPEN,
  type LinkSocket,
  type RawFrame,
} from '../../proto/runtime/link-socket.js';

/** One end of the pair. `sent` records every text frame this end sent, for assertions. */
export class MemorySocket implements LinkSocket {
  readonly #events = new EventEmitter();
  readyState = SOCKET_CONNECTING;
  bufferedAmount = 0;
  readonly sent: string[] = [];
  /** The close code and reason this end saw, once closed. */
  closedWith: { code: number; reason: string } | undefined;
  peer: MemorySocket | undefined;
  #held = false;
  readonly #queue: (() => void)[] = [];

  on(event: 'open', listener: () => void): this;
  on(event: 'message', listener: (data: RawFrame, isBinary: boolean) => void): this;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the overloads above are the typed surface
  on(event: string, listener: (...args: any[]) => void): this {
    this.#events.on(event, listener);
    return this;
  }

  once(event: 'open', listener: () => void): this;
  once(event: 'message', listener: (data: RawFrame, isBinary: boolean) => void): this;
  once(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the overloads above are the typed surface
  once(event: string, listener: (...args: any[]) => void): this {
    this.#events.once(event, listener);
    return this;
  }

  removeAllListeners(event?: 'open' | 'message' | 'close' | 'error'): this {
    this.#events.removeAllListeners(event);
    return this;
  }

  /** Emits `error` on this end (a network failure). */
  fail(err: Error): void {
    this.#events.emit('error', err);
  }

  /** Marks both ends open and emits `open` on each (a completed handshake). */
  open(): void {
    for (const s of [this, this.peer]) {
      if (s === undefined || s.readyState !== SOCKET_CONNECTING) continue;
      s.readyState = SOCKET_OPEN;
      s.#events.emit('open');
    }
  }

  send(data: string, cb?: (err?: Error) => void): void {
    if (this.readyState !== SOCKET_OPEN) {
      const err = new Error('WebSocket is not open');
      if (cb !== undefined) setImmediate(cb, err);
      return;
    }
    this.sent.push(data);
    this.bufferedAmount += Buffer.byteLength(data);
    this.#deliver(() => {
      this.bufferedAmount -= Buffer.byteLength(data);
      cb?.();
      const peer = this.peer;
      if (peer?.readyState === SOCKET_OPEN) peer.#events.emit('message', Buffer.from(data), false);
    });
  }

  /** Delivers a raw frame to this end as if the peer had sent it (binary or malformed input). */
  receive(data: RawFrame, isBinary = false): void {
    setImmediate(() => {
      if (this.readyState === SOCKET_OPEN) this.#events.emit('message', data, isBinary);
    });
  }

  close(code = 1005, reason = ''): void {
    if (this.readyState === SOCKET_CLOSING || this.readyState === SOCKET_CLOSED) return;
    this.readyState = SOCKET_CLOSING;
    this.#deliver(() => {
      this.#finish(code, reason);
      if (this.peer !== undefined) this.peer.#finish(code, reason);
    });
  }

  terminate(): void {
    if (this.readyState === SOCKET_CLOSED) return;
    this.readyState = SOCKET_CLOSING;
    setImmediate(() => {
      this.#finish(1006, '');
      if (this.peer !== undefined) this.peer.#finish(1006, '');
    });
  }

  /** Holds everything this end sends until {@link release} (a slow network or a stalled reader). */
  hold(): void {
    this.#held = true;
  }

  release(): void {
    this.#held = false;
    for (const run of this.#queue.splice(0)) setImmediate(run);
  }

  /** The frames this end sent, parsed as JSON. */
  sentFrames(): unknown[] {
    return this.sent.map((s) => JSON.parse(s) as unknown);
  }

  #deliver(run: () => void): void {
    if (this.#held) this.#queue.push(run);
    else setImmediate(run);
  }

  #finish(code: number, reason: string): void {
    if (this.readyState === SOCKET_CLOSED) return;
    this.readyState = SOCKET_CLOSED;
    this.closedWith = { code, reason };
    this.#events.emit('close', code, Buffer.from(reason));
  }
}

/** A joined pair of sockets, both still connecting; call `a.open()` to complete the handshake. */
export function socketPair(): { a: MemorySocket; b: MemorySocket } {
  const a = new MemorySocket();
  const b = new MemorySocket();
  a.peer = b;
  b.peer = a;
  return { a, b };
}

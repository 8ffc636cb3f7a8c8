/**
 * The part of a WebSocket that a link uses: what `ws`'s WebSocket offers, narrowed so that the link
 * classes (the agent's upstream connection, the session's agent connection, the servers' RPC peers)
 * can be driven by an in-memory socket pair in unit tests.
 */

/** A received frame as `ws` hands it over (a Buffer unless the socket was told otherwise). */
export type RawFrame = Buffer | ArrayBuffer | Buffer[];

/** `readyState` values, as in the WebSocket standard. */
export const SOCKET_CONNECTING = 0;
export const SOCKET_OPEN = 1;
export const SOCKET_CLOSING = 2;
export const SOCKET_CLOSED = 3;

export interface LinkSocket {
  readonly readyState: number;
  /** Bytes queued by `send` and not yet written to the network. */
  readonly bufferedAmount: number;
  /** Queues a text frame; `cb` runs once it was written (or with the error that stopped it). */
  send(data: string, cb?: (err?: Error) => void): void;
  /** Starts the closing handshake with a close code and reason (at most 123 bytes). */
  close(code?: number, reason?: string): void;
  /** Drops the connection at once, without a closing handshake. */
  terminate(): void;
  on(event: 'open', listener: () => void): this;
  on(event: 'message', listener: (data: RawFrame, isBinary: boolean) => void): this;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  once(event: 'open', listener: () => void): this;
  once(event: 'message', listener: (data: RawFrame, isBinary: boolean) => void): this;
  once(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
  removeAllListeners(event?: 'open' | 'message' | 'close' | 'error'): this;
}

/** The text of a received frame, however `ws` delivered it (one Buffer, fragments, or an ArrayBuffer). */
export function frameText(data: RawFrame): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

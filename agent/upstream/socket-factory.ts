/**
 * How the agent's upstream link opens a socket to a session server: plain `ws://`, or `wss://` with
 * the agent's TLS settings. Tests pass their own factory (an in-memory pair).
 */
import WebSocket from 'ws';
import type { LinkSocket } from '../../proto/runtime/link-socket.js';
import { TLS_ENV } from '../../proto/runtime/tls-config.js';
import type { TlsSource } from '../../proto/runtime/tls.js';

/** How a socket to a session server is opened. */
export interface ConnectOptions {
  /** The opening handshake must finish within this time. */
  readonly handshakeTimeoutMs: number;
  /** Largest frame accepted from the session; a larger one closes the socket with 1009. */
  readonly maxFrameBytes: number;
}

/** Opens a socket to `url` (still connecting: it emits `open` or `close`). */
export type SocketFactory = (url: string, opts: ConnectOptions) => LinkSocket;

/** The production {@link SocketFactory}: a `ws` WebSocket. */
export const wsSocketFactory: SocketFactory = (url, opts) =>
  new WebSocket(url, {
    handshakeTimeout: opts.handshakeTimeoutMs,
    // What a session may send us is bounded too (config maxFrameBytes, 64 MiB: one push carries a
    // whole service). ws checks it from the frame header; a larger frame closes with 1009.
    maxPayload: opts.maxFrameBytes,
    perMessageDeflate: false,
  });

/**
 * The {@link SocketFactory} of an agent with TLS settings: `wss://` with its CA, certificate and
 * server-name check, read at each dial so a rotated certificate is used at the next reconnect. A
 * plaintext URL throws: the link logs why and retries like any failed connection.
 */
export function tlsSocketFactory(tls: TlsSource): SocketFactory {
  return (url, opts) => {
    if (!/^wss:\/\//i.test(url))
      throw new Error(
        `refusing plain-text session URL ${url}: TLS is configured (${TLS_ENV.cert}, ${TLS_ENV.ca})`,
      );
    return new WebSocket(url, {
      ...tls.clientOptions(),
      handshakeTimeout: opts.handshakeTimeoutMs,
      maxPayload: opts.maxFrameBytes,
      perMessageDeflate: false,
    });
  };
}

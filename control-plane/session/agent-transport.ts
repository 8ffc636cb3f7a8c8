/**
 * The transport under an {@link AgentConnection}: a {@link LinkSocket} plus the three things the
 * connection needs that a plain socket does not offer (sending a frame encoded once for many
 * connections, and the per-connection frame limit). Production wraps `ws`'s WebSocket with
 * {@link wsTransport}; unit tests wrap an in-memory socket.
 */
import type WebSocket from 'ws';
import type { LinkSocket } from '../../proto/runtime/link-socket.js';
import { closeOversizedWithReason, setMaxPayload } from '../link/ws-limits.js';

export interface AgentTransport {
  readonly socket: LinkSocket;
  /** Sends a text frame already encoded as UTF-8 (shared by many connections) without copying it. */
  sendEncoded(frame: Buffer, written?: () => void): void;
  /**
   * Runs `listener` when a frame over the current limit arrives; the transport itself closes the
   * socket with `payload_too_large`.
   */
  onOversized(listener: (limitBytes: number) => void): void;
  /** The limit of frames received from now on (raised once the hello is accepted). */
  setFrameLimit(bytes: number): void;
}

/** An agent transport over `ws`: frame limits through `ws`'s receiver (see `link/ws-limits.ts`). */
export function wsTransport(ws: WebSocket): AgentTransport {
  return {
    socket: ws,
    sendEncoded(frame, written) {
      // A Buffer sent with `binary: false` goes out as a text frame, as is: no per-connection copy.
      ws.send(frame, { binary: false }, written);
    },
    onOversized(listener) {
      closeOversizedWithReason(ws, listener);
    },
    setFrameLimit(bytes) {
      setMaxPayload(ws, bytes);
    },
  };
}

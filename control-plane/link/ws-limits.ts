/**
 * Per-connection frame limits on top of `ws`.
 *
 * `ws` takes `maxPayload` once per server and checks it when a frame's header is read, before the
 * payload is buffered. Every link starts with a small limit (nothing unauthenticated may make a
 * server allocate much) and is raised to the link's full limit once the hello is accepted. `ws@8`
 * has no public setter, so the two private hooks it needs live here and nowhere else; the unit test
 * `ws-limits - ...` fails if a `ws` upgrade moves them.
 */
import type WebSocket from 'ws';
import { ERROR_TABLE, closeReason } from '../../proto/errors.js';

/** The receiver fields this module relies on (ws/lib/receiver.js, ws@8). */
interface ReceiverInternals {
  _maxPayload: number;
  prependListener(event: 'error', listener: (err: Error & { code?: string }) => void): unknown;
}

function receiverOf(ws: WebSocket): ReceiverInternals {
  const receiver = (ws as unknown as { _receiver?: Partial<ReceiverInternals> | null })._receiver;
  if (
    receiver === undefined ||
    receiver === null ||
    typeof receiver._maxPayload !== 'number' ||
    typeof receiver.prependListener !== 'function'
  ) {
    // A bug, not bad input: the installed `ws` no longer has the fields this module was written for.
    throw new Error('ws receiver internals changed: frame limits cannot be applied');
  }
  return receiver as ReceiverInternals;
}

/** The payload limit `ws` currently enforces on frames received on `ws`. */
export function maxPayloadOf(ws: WebSocket): number {
  return receiverOf(ws)._maxPayload;
}

/** Raises (or lowers) the payload limit of frames received from now on, e.g. after the hello. */
export function setMaxPayload(ws: WebSocket, bytes: number): void {
  receiverOf(ws)._maxPayload = bytes;
}

/** `ws`'s error code for a message over `maxPayload` (ws/lib/receiver.js). */
const TOO_LARGE = 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';

/**
 * Makes a frame over the limit close with 1009 *and a reason* naming the limit: `ws` closes with a
 * bare 1009 right after its receiver reports the error, so this listener runs first and closes with
 * the reason (the later bare close is then a no-op). `onTooLarge` runs once, for logging.
 */
export function closeOversizedWithReason(ws: WebSocket, onTooLarge: (limitBytes: number) => void): void {
  receiverOf(ws).prependListener('error', (err) => {
    if (err.code !== TOO_LARGE) return;
    const limit = maxPayloadOf(ws);
    if (ws.readyState === ws.OPEN) {
      ws.close(ERROR_TABLE.payload_too_large.ws, closeReason(`payload_too_large: frame over ${limit} bytes`));
    }
    // `ws` then resumes the socket to read (and drop) the rest of the frame: a 64 MiB frame would
    // still pass through this process as garbage. Stop reading instead (after ws's resume, queued
    // with nextTick) and cut the connection once the close frame had time to go out.
    setImmediate(() => {
      ws.pause();
    });
    setTimeout(() => {
      ws.terminate();
    }, CUT_OFF_MS).unref();
    onTooLarge(limit);
  });
}

/** How long a peer that sent a frame over the limit gets to read the close frame. */
const CUT_OFF_MS = 500;

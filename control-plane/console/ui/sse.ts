/**
 * Server-Sent Events framing (the WHATWG HTML "event stream" format) for the live stream: splits a
 * stream of text chunks into events, whatever the chunk boundaries. Pure: no DOM, no network.
 */

/** One event: its name (`message` when none was given) and its data lines joined by `\n`. */
export interface SseEvent {
  readonly event: string;
  readonly data: string;
}

/** Parses one event block (`event:`/`data:` lines); comments and empty blocks give undefined. */
export function parseEvent(block: string): SseEvent | undefined {
  let event = 'message';
  const data: string[] = [];
  let fields = 0;
  for (const line of block.split('\n')) {
    if (line.startsWith(':') || line === '') continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') {
      event = value;
      fields++;
    } else if (field === 'data') {
      data.push(value);
      fields++;
    }
  }
  return fields === 0 ? undefined : { event, data: data.join('\n') };
}

/** Buffers chunks and answers the complete events they finish (blank line = end of an event). */
export class SseSplitter {
  #buf = '';
  #lastWasCr = false;

  /** Feeds a chunk; answers the events it completed, in order. */
  push(chunk: string): SseEvent[] {
    // A CR ends a line at once; when the next chunk starts with LF, that LF was its CRLF's second half.
    const text = this.#lastWasCr && chunk.startsWith('\n') ? chunk.slice(1) : chunk;
    if (chunk !== '') this.#lastWasCr = chunk.endsWith('\r');
    this.#buf += text.replace(/\r\n?/g, '\n');
    const out: SseEvent[] = [];
    let end = this.#buf.indexOf('\n\n');
    while (end !== -1) {
      const ev = parseEvent(this.#buf.slice(0, end));
      if (ev !== undefined) out.push(ev);
      this.#buf = this.#buf.slice(end + 2);
      end = this.#buf.indexOf('\n\n');
    }
    return out;
  }
}

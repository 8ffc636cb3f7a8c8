/**
 * The live update stream: reads the Server-Sent Events of `/admin/console/events` through `fetch` (not
 * `EventSource`, which cannot send the `Authorization` header) and calls back on every `changed`
 * event. Reconnects with a capped, jittered backoff; its state is shown in the page's header.
 */
import { SseSplitter } from './sse.js';
import { authHeaders } from './token.js';

/** The stream's state, as the header shows it. */
export type LiveState = 'connecting' | 'live' | 'retrying' | 'stopped';

/** What a `changed` event says: which parts changed (as the server names them) and its version. */
export interface Changed {
  readonly parts: readonly string[];
  readonly raw: unknown;
}

const INITIAL_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 10_000;
/** After connecting, one more full refresh this much later (the server's first change poll). */
const SETTLE_MS = 1000;

function partsOf(raw: unknown): string[] {
  if (typeof raw !== 'object' || raw === null) return [];
  const p = (raw as Record<string, unknown>)['parts'];
  return Array.isArray(p) ? p.filter((x): x is string => typeof x === 'string') : [];
}

/** Follows the event stream at `url` until {@link LiveStream.stop}. */
export class LiveStream {
  readonly #url: string;
  readonly #onChanged: (c: Changed) => void;
  readonly #onState: (s: LiveState) => void;
  #abort = new AbortController();
  #backoffMs = INITIAL_BACKOFF_MS;
  #stopped = false;

  constructor(url: string, onChanged: (c: Changed) => void, onState: (s: LiveState) => void) {
    this.#url = url;
    this.#onChanged = onChanged;
    this.#onState = onState;
  }

  /** Connects (and keeps reconnecting). */
  start(): void {
    void this.#run();
  }

  /** Closes the stream for good. */
  stop(): void {
    this.#stopped = true;
    this.#abort.abort();
    this.#onState('stopped');
  }

  /** Drops the current connection and connects again at once (after the token changed). */
  restart(): void {
    this.#abort.abort();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      this.#abort = new AbortController();
      this.#onState('connecting');
      try {
        await this.#readOnce(this.#abort.signal);
      } catch {
        // Network errors and aborts end this connection; the loop decides whether to retry.
      }
      if (this.#stopped) return;
      this.#onState('retrying');
      const wait = this.#backoffMs * (0.5 + Math.random() / 2);
      this.#backoffMs = Math.min(this.#backoffMs * 2, MAX_BACKOFF_MS);
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  async #readOnce(signal: AbortSignal): Promise<void> {
    const res = await fetch(this.#url, {
      headers: { accept: 'text/event-stream', ...authHeaders() },
      signal,
    });
    if (!res.ok || res.body === null) return;
    this.#onState('live');
    this.#backoffMs = INITIAL_BACKOFF_MS;
    // Anything may have changed while we were not listening; and a change made just after the
    // stream opened may come before the server took its first look, so look again a little later.
    this.#onChanged({ parts: [], raw: undefined });
    const settle = setTimeout(() => {
      this.#onChanged({ parts: [], raw: undefined });
    }, SETTLE_MS);
    signal.addEventListener('abort', () => {
      clearTimeout(settle);
    });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    const splitter = new SseSplitter();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      for (const ev of splitter.push(value)) if (ev.event === 'changed') this.#emit(ev.data);
    }
  }

  #emit(data: string): void {
    let raw: unknown;
    try {
      raw = JSON.parse(data);
    } catch {
      raw = undefined;
    }
    this.#onChanged({ parts: partsOf(raw), raw });
  }
}

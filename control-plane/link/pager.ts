/**
 * The responder side of paged results: a result too large for one frame is taken whole at the
 * first call (a consistent snapshot, as one frame was) and handed out in pages of at most
 * `pageBytes` of JSON, each next page fetched with its cursor. Cursors are few and short-lived: an
 * abandoned one expires, and opening one past the limit drops the oldest.
 */
import { randomBytes } from 'node:crypto';
import { MeshregError } from '../../proto/errors.js';
import { MAX_PAGE_ITEMS, type Page } from '../../proto/rpc.js';

export interface PagerOptions {
  /** JSON bytes of items per page (at least one item goes in each page). */
  readonly pageBytes: number;
  /** An unused cursor is dropped after this long. */
  readonly ttlMs: number;
  /** Cursors open at once; more drop the oldest. */
  readonly maxOpen: number;
}

interface Cursor {
  readonly items: readonly unknown[];
  next: number;
  timer: NodeJS.Timeout | undefined;
}

export class Pager {
  readonly #opts: PagerOptions;
  readonly #cursors = new Map<string, Cursor>();

  constructor(opts: PagerOptions) {
    this.#opts = opts;
  }

  /** Cursors open now (for tests and /health). */
  get open(): number {
    return this.#cursors.size;
  }

  /** The first page of `items`, keeping the rest under a new cursor. */
  first(items: readonly unknown[]): Page<unknown> {
    return this.#page(undefined, { items, next: 0, timer: undefined });
  }

  /** The next page under `cursor`; `not_found` when it expired or never existed. */
  next(cursor: string): Page<unknown> {
    const c = this.#cursors.get(cursor);
    if (c === undefined) throw new MeshregError('not_found', 'unknown or expired page cursor');
    clearTimeout(c.timer);
    this.#cursors.delete(cursor);
    return this.#page(cursor, c);
  }

  close(): void {
    for (const c of this.#cursors.values()) clearTimeout(c.timer);
    this.#cursors.clear();
  }

  #page(id: string | undefined, c: Cursor): Page<unknown> {
    const page: unknown[] = [];
    let bytes = 0;
    while (c.next < c.items.length && page.length < MAX_PAGE_ITEMS) {
      const item = c.items[c.next];
      const size = Buffer.byteLength(JSON.stringify(item) ?? 'null') + 1;
      if (page.length > 0 && bytes + size > this.#opts.pageBytes) break;
      page.push(item);
      bytes += size;
      c.next++;
    }
    if (c.next >= c.items.length) return { items: page };
    const cursor = id ?? randomBytes(12).toString('hex');
    this.#keep(cursor, c);
    return { items: page, cursor };
  }

  #keep(cursor: string, c: Cursor): void {
    if (this.#cursors.size >= this.#opts.maxOpen) {
      const oldest = this.#cursors.keys().next().value;
      if (oldest !== undefined) {
        clearTimeout(this.#cursors.get(oldest)?.timer);
        this.#cursors.delete(oldest);
      }
    }
    c.timer = setTimeout(() => this.#cursors.delete(cursor), this.#opts.ttlMs);
    c.timer.unref();
    this.#cursors.set(cursor, c);
  }
}

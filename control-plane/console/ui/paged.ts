/**
 * Pieces shared by the server-paged lists (services, agents): the table with its column heads, the
 * "n–m of total" line and the Previous/Next buttons.
 */
import { get } from './api.js';
import { failed } from './app.js';
import { h, mount, type Child } from './dom.js';
import { count } from './format.js';

/** A page of a list as the API answers it. */
export interface PageInfo {
  readonly offset: number;
  readonly total: number;
  /** Rows on this page. */
  readonly shown: number;
}

/** A table with an id, a caption, column heads and the given body rows. */
export function dataTable(id: string, caption: string, heads: readonly string[], rows: Child): HTMLElement {
  return h(
    'table',
    { id },
    h('caption', {}, caption),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        heads.map((x) => h('th', { scope: 'col' }, x)),
      ),
    ),
    h('tbody', {}, rows),
  );
}

/** `Services 1–100 of 10,000` (or `No services match.`). */
export function rangeText(noun: string, p: PageInfo): string {
  const last = Math.min(p.offset + p.shown, p.total);
  return p.total === 0
    ? `No ${noun.toLowerCase()} match.`
    : `${noun} ${count(p.offset + 1)}–${count(last)} of ${count(p.total)}`;
}

/** Draws Previous/Next into `into`; `go(offset)` loads that page. */
export function drawPager(
  into: HTMLElement,
  p: PageInfo,
  pageSize: number,
  go: (offset: number) => void,
): void {
  const last = p.offset + p.shown;
  const button = (label: string, disabled: boolean, to: number): HTMLButtonElement =>
    h(
      'button',
      { type: 'button', class: 'secondary', 'data-key': label, disabled, onclick: () => go(Math.max(0, to)) },
      label,
    );
  mount(
    into,
    button('Previous', p.offset === 0, p.offset - pageSize),
    button('Next', last >= p.total, p.offset + pageSize),
  );
}

/** A list's note that some members did not answer (their rows are missing), or nothing. */
export const unreachableNote = (ids: readonly string[]): Child =>
  ids.length === 0
    ? null
    : h('p', { class: 'error' }, `Not answering (their rows are missing): ${ids.join(', ')}`);

/**
 * A fetcher of list pages that keeps only the newest request's answer (typing in a filter sends
 * several): older answers resolve undefined, and a failure is drawn into `body` (also undefined).
 */
export function latestPage<T>(body: HTMLElement, what: string): (path: string) => Promise<T | undefined> {
  let seq = 0;
  return async (path) => {
    const mine = ++seq;
    const r = await get<T>(path);
    if (mine !== seq) return undefined;
    if (!r.ok) mount(body, failed(what, r));
    return r.ok ? r.value : undefined;
  };
}

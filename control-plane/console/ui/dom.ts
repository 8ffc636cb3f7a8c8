/**
 * The console's tiny DOM helper: builds elements from a tag, properties and children. Text is always
 * set as text (never parsed as HTML), so data from the registry cannot inject markup.
 */

/** A child of {@link h}: a node, text, or nothing (skipped). */
export type Child = Node | string | number | null | undefined | false | readonly Child[];

/** Attributes of {@link h}: `class`, `for`, `aria-*`, `data-*` and any other attribute as text. */
export type Attrs = Readonly<Record<string, string | number | boolean | undefined | EventListener>>;

function append(parent: Node, child: Child): void {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child as readonly Child[]) append(parent, c);
    return;
  }
  parent.appendChild(
    typeof child === 'string' || typeof child === 'number'
      ? document.createTextNode(String(child))
      : (child as Node),
  );
}

/**
 * Creates `<tag>` with `attrs` and `children`. An attribute whose value is a function and whose name
 * starts with `on` is an event listener; `true` sets a boolean attribute, `false`/undefined leaves it out.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else if (v !== undefined && v !== false) el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Creates an SVG element with attributes (for the sparklines). */
export function svg(
  tag: string,
  attrs: Readonly<Record<string, string | number>>,
  ...children: Node[]
): SVGElement {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.appendChild(c);
  return el;
}

/** What identifies a focusable element across redraws: its id, else its `data-key`. */
function focusKey(el: Element | null): string | undefined {
  if (!(el instanceof HTMLElement)) return undefined;
  if (el.id !== '') return `#${el.id}`;
  const key = el.dataset['key'];
  return key === undefined ? undefined : `[data-key="${CSS.escape(key)}"]`;
}

/**
 * Replaces every child of `parent` with `children`. When the focus was inside, it moves to the new
 * element with the same id or `data-key`, so a live redraw does not throw a keyboard user back to
 * the top of the page.
 */
export function mount(parent: Element, ...children: Child[]): void {
  const active = document.activeElement;
  const key = active !== null && parent.contains(active) ? focusKey(active) : undefined;
  const frag = document.createDocumentFragment();
  append(frag, children);
  parent.replaceChildren(frag);
  if (key === undefined) return;
  const again = parent.querySelector(key);
  if (again instanceof HTMLElement) again.focus();
}

/** The element with `id`, or an error naming it (the page's skeleton is fixed). */
export function byId(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`console: no #${id} in the page`);
  return el;
}

/** The form control with `id` (an `<input>` or `<form>` of the skeleton), checked at run time. */
export function controlById<T extends HTMLInputElement | HTMLFormElement>(id: string, kind: new () => T): T {
  const el = byId(id);
  if (!(el instanceof kind)) throw new Error(`console: #${id} is not the expected element`);
  return el;
}

/** A table with a caption, column heads and rows; `empty` is shown as one row when there are none. */
export function table(
  caption: string,
  heads: readonly string[],
  rows: readonly Child[][],
  empty = 'None',
): HTMLElement {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      {},
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
      h(
        'tbody',
        {},
        rows.length === 0
          ? h('tr', {}, h('td', { colspan: heads.length, class: 'muted' }, empty))
          : rows.map((r) =>
              h(
                'tr',
                {},
                r.map((c) => h('td', {}, c)),
              ),
            ),
      ),
    ),
  );
}

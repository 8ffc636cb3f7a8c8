/**
 * The services list: name, instances, health counts, zones, tags; filtered, sorted and paged by the
 * server (`/admin/console/services`), so 10,000 services cost the page one page of rows. The filters
 * live in the hash (`#/services?filter=web&health=critical`) without reloading the page.
 */
import type { ConsoleServicePage, ConsoleServiceRow } from '../../../proto/console.js';
import { withQuery } from './api.js';
import type { Page, PageFactory } from './app.js';
import { h, mount, type Child } from './dom.js';
import { count } from './format.js';
import { dataTable, drawPager, latestPage, rangeText, unreachableNote } from './paged.js';
import { serviceHref } from './router.js';

const PAGE_SIZE = 100;
const SORTS = ['name', 'instances', 'critical'] as const;
const FILTER_DEBOUNCE_MS = 200;

interface State {
  filter: string;
  health: string;
  zone: string;
  tag: string;
  sort: string;
  offset: number;
}

function stateOf(q: URLSearchParams): State {
  const offset = Number(q.get('offset') ?? '0');
  return {
    filter: q.get('filter') ?? '',
    health: q.get('health') ?? '',
    zone: q.get('zone') ?? '',
    tag: q.get('tag') ?? '',
    sort: q.get('sort') ?? 'name',
    offset: Number.isInteger(offset) && offset > 0 ? offset : 0,
  };
}

function field(id: string, label: string, control: HTMLElement): HTMLElement {
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), control);
}

function healthCell(n: number, word: 'passing' | 'warning' | 'critical'): Child {
  return n === 0 ? h('span', { class: 'muted' }, '0') : h('span', { class: `badge ${word}` }, count(n));
}

function row(s: ConsoleServiceRow): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-service': s.name },
    h('th', { scope: 'row' }, h('a', { href: serviceHref(s.name) }, s.name)),
    h('td', {}, count(s.instances)),
    h('td', {}, healthCell(s.passing, 'passing')),
    h('td', {}, healthCell(s.warning, 'warning')),
    h('td', {}, healthCell(s.critical, 'critical')),
    h('td', {}, s.draining === 0 ? '0' : count(s.draining)),
    h('td', {}, s.zones.join(', ') || '–'),
    h('td', {}, s.tags.join(', ') || '–'),
  );
}

interface Controls {
  readonly filter: HTMLInputElement;
  readonly zone: HTMLInputElement;
  readonly tag: HTMLInputElement;
  readonly health: HTMLSelectElement;
  readonly sort: HTMLSelectElement;
}

function controls(state: State): Controls {
  return {
    filter: h('input', { type: 'search', value: state.filter, placeholder: 'part of the name' }),
    zone: h('input', { type: 'text', value: state.zone }),
    tag: h('input', { type: 'text', value: state.tag }),
    health: h(
      'select',
      {},
      ['', 'passing', 'warning', 'critical'].map((v) =>
        h('option', { value: v, selected: v === state.health }, v === '' ? 'any' : `has ${v}`),
      ),
    ),
    sort: h(
      'select',
      {},
      SORTS.flatMap((k) => [
        h('option', { value: k, selected: state.sort === k }, `${k} ↑`),
        h('option', { value: `-${k}`, selected: state.sort === `-${k}` }, `${k} ↓`),
      ]),
    ),
  };
}

/** The filter form; `changed` runs (debounced) after any edit, with `state` updated. */
function filterForm(c: Controls, state: State, changed: () => void): HTMLFormElement {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const edit = (): void => {
    state.filter = c.filter.value.trim();
    state.zone = c.zone.value.trim();
    state.tag = c.tag.value.trim();
    state.health = c.health.value;
    state.sort = c.sort.value;
    state.offset = 0;
    clearTimeout(timer);
    timer = setTimeout(changed, FILTER_DEBOUNCE_MS);
  };
  for (const el of [c.filter, c.zone, c.tag]) el.addEventListener('input', edit);
  for (const el of [c.health, c.sort]) el.addEventListener('change', edit);
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter services' },
    field('svc-filter', 'Name contains', c.filter),
    field('svc-health', 'Health', c.health),
    field('svc-zone', 'Zone', c.zone),
    field('svc-tag', 'Tag', c.tag),
    field('svc-sort', 'Sort by', c.sort),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    edit();
  });
  return form;
}

const HEADS = ['Service', 'Instances', 'Passing', 'Warning', 'Critical', 'Draining', 'Zones', 'Tags'];

/** The services page. */
export const servicesPage: PageFactory = (main, route): Page => {
  const state = stateOf(route.query);
  const status = h('p', { class: 'muted', role: 'status', id: 'services-status' });
  const body = h('div', { class: 'table-wrap' });
  const pager = h('div', { class: 'pager' });
  const fetchPage = latestPage<ConsoleServicePage>(body, 'the services');
  const load = async (): Promise<void> => {
    history.replaceState(null, '', `#/services${withQuery('', { ...state, offset: state.offset || '' })}`);
    const p = await fetchPage(withQuery('/admin/console/services', { ...state, limit: PAGE_SIZE }));
    if (p === undefined) return;
    const info = { offset: p.offset, total: p.total, shown: p.services.length };
    status.textContent = rangeText('Services', info);
    const caption = 'Services; health columns count instances by their worst check';
    mount(
      body,
      dataTable('services-table', caption, HEADS, p.services.map(row)),
      unreachableNote(p.unreachable),
    );
    drawPager(pager, info, PAGE_SIZE, (offset) => {
      state.offset = offset;
      void load();
    });
  };
  const form = filterForm(controls(state), state, () => void load());
  mount(main, h('h1', {}, 'Services'), form, status, body, pager);
  return { parts: ['services'], refresh: load };
};

/**
 * The services list: name, instances, health counts, zones, tags; filtered, sorted and paged by the
 * server (`/admin/console/services`), so 10,000 services cost the page one page of rows. The filters
 * live in the hash (`#/services?filter=web&health=critical`) without reloading the page.
 */
import type { ConsoleServicePage, ConsoleServiceRow } from '../../../proto/console.js';
import { get, withQuery } from './api.js';
import { failed, type Page, type PageFactory } from './app.js';
import { h, mount, type Child } from './dom.js';
import { count } from './format.js';
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

/** The services page. */
export const servicesPage: PageFactory = (main, route): Page => {
  const state = stateOf(route.query);
  const status = h('p', { class: 'muted', role: 'status', id: 'services-status' });
  const body = h('div', { class: 'table-wrap' });
  const pager = h('div', { class: 'pager' });
  let seq = 0;
  const filterInput = h('input', { type: 'search', value: state.filter, placeholder: 'part of the name' });
  const zoneInput = h('input', { type: 'text', value: state.zone });
  const tagInput = h('input', { type: 'text', value: state.tag });
  const health = h(
    'select',
    {},
    ['', 'passing', 'warning', 'critical'].map((v) =>
      h('option', { value: v, selected: v === state.health }, v === '' ? 'any' : `has ${v}`),
    ),
  );
  const sort = h(
    'select',
    {},
    SORTS.flatMap((k) => [
      h('option', { value: k, selected: state.sort === k }, `${k} ↑`),
      h('option', { value: `-${k}`, selected: state.sort === `-${k}` }, `${k} ↓`),
    ]),
  );
  const load = async (): Promise<void> => {
    const mine = ++seq;
    const q = { ...state, limit: PAGE_SIZE };
    history.replaceState(null, '', `#/services${withQuery('', { ...state, offset: state.offset || '' })}`);
    const r = await get<ConsoleServicePage>(withQuery('/admin/console/services', q));
    if (mine !== seq) return; // a newer request is on its way
    if (!r.ok) {
      mount(body, failed('the services', r));
      return;
    }
    draw(r.value);
  };
  const draw = (p: ConsoleServicePage): void => {
    const last = Math.min(p.offset + p.services.length, p.total);
    status.textContent =
      p.total === 0
        ? 'No services match.'
        : `Services ${count(p.offset + 1)}–${count(last)} of ${count(p.total)}`;
    const heads = ['Service', 'Instances', 'Passing', 'Warning', 'Critical', 'Draining', 'Zones', 'Tags'];
    mount(
      body,
      h(
        'table',
        { id: 'services-table' },
        h('caption', {}, 'Services; health columns count instances by their worst check'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            heads.map((x) => h('th', { scope: 'col' }, x)),
          ),
        ),
        h('tbody', {}, p.services.map(row)),
      ),
      p.unreachable.length > 0
        ? h(
            'p',
            { class: 'error' },
            `Not answering (their services are missing): ${p.unreachable.join(', ')}`,
          )
        : null,
    );
    const go = (offset: number) => () => {
      state.offset = Math.max(0, offset);
      void load();
    };
    mount(
      pager,
      h(
        'button',
        { type: 'button', class: 'secondary', disabled: p.offset === 0, onclick: go(p.offset - PAGE_SIZE) },
        'Previous',
      ),
      h(
        'button',
        { type: 'button', class: 'secondary', disabled: last >= p.total, onclick: go(p.offset + PAGE_SIZE) },
        'Next',
      ),
    );
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const changed = (): void => {
    state.filter = filterInput.value.trim();
    state.zone = zoneInput.value.trim();
    state.tag = tagInput.value.trim();
    state.health = health.value;
    state.sort = sort.value;
    state.offset = 0;
    clearTimeout(timer);
    timer = setTimeout(() => void load(), FILTER_DEBOUNCE_MS);
  };
  for (const el of [filterInput, zoneInput, tagInput]) el.addEventListener('input', changed);
  for (const el of [health, sort]) el.addEventListener('change', changed);
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter services' },
    field('svc-filter', 'Name contains', filterInput),
    field('svc-health', 'Health', health),
    field('svc-zone', 'Zone', zoneInput),
    field('svc-tag', 'Tag', tagInput),
    field('svc-sort', 'Sort by', sort),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    changed();
  });
  mount(main, h('h1', {}, 'Services'), form, status, body, pager);
  return { parts: ['services'], refresh: load };
};

/**
 * The agents (nodes): node, zone, session, connected since, last contact, cache age, offline or not,
 * registrations and subscriptions; filtered by node name and status, paged by the server.
 */
import type { ConsoleAgent, ConsoleAgentPage } from '../../../proto/console.js';
import { withQuery } from './api.js';
import { badge, type Page, type PageFactory } from './app.js';
import { h, mount } from './dom.js';
import { ago, count, duration, time } from './format.js';
import { dataTable, drawPager, latestPage, rangeText, unreachableNote } from './paged.js';

const PAGE_SIZE = 100;

function row(a: ConsoleAgent): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-node': a.node },
    h('th', { scope: 'row' }, a.node, a.nodeId === '' ? null : h('div', { class: 'muted' }, a.nodeId)),
    h('td', {}, a.zone || '–'),
    h('td', {}, h('code', {}, a.session || '–')),
    h('td', {}, a.address || '–'),
    h('td', {}, a.offline ? badge('offline') : badge('online', 'passing')),
    h('td', {}, time(a.connectedSince)),
    h('td', {}, ago(a.lastContact)),
    h(
      'td',
      {},
      a.cacheAgeMs === null ? h('span', { class: 'muted' }, 'not reported') : duration(a.cacheAgeMs),
    ),
    h('td', {}, count(a.registrations)),
    h('td', {}, count(a.subscriptions)),
  );
}

/** The agents page. */
export const agentsPage: PageFactory = (main, route): Page => {
  const filter = h('input', { id: 'agent-filter', type: 'search', value: route.query.get('filter') ?? '' });
  const statusSel = h(
    'select',
    { id: 'agent-status' },
    ['', 'online', 'offline'].map((v) =>
      h('option', { value: v, selected: route.query.get('status') === v }, v === '' ? 'any' : v),
    ),
  );
  const status = h('p', { class: 'muted', role: 'status' });
  const body = h('div', { class: 'table-wrap' });
  const pager = h('div', { class: 'pager' });
  let offset = 0;
  const fetchPage = latestPage<ConsoleAgentPage>(body, 'the agents');
  const heads = [
    'Node',
    'Zone',
    'Session',
    'Address',
    'State',
    'Connected since',
    'Last contact',
    'Cache age',
    'Registrations',
    'Subscriptions',
  ];
  const load = async (): Promise<void> => {
    const q = { filter: filter.value.trim(), status: statusSel.value, offset, limit: PAGE_SIZE };
    const p = await fetchPage(withQuery('/admin/console/agents', q));
    if (p === undefined) return;
    const info = { offset: p.offset, total: p.total, shown: p.agents.length };
    status.textContent = rangeText('Agents', info);
    mount(
      body,
      dataTable('agents-table', 'Agents (one per node)', heads, p.agents.map(row)),
      unreachableNote(p.unreachable),
    );
    drawPager(pager, info, PAGE_SIZE, (to) => {
      offset = to;
      void load();
    });
  };
  const changed = (): void => {
    offset = 0;
    void load();
  };
  filter.addEventListener('input', changed);
  statusSel.addEventListener('change', changed);
  mount(
    main,
    h('h1', {}, 'Agents'),
    h(
      'form',
      {
        class: 'filters',
        role: 'search',
        'aria-label': 'Filter agents',
        onsubmit: (e: Event) => e.preventDefault(),
      },
      h('div', { class: 'field' }, h('label', { for: 'agent-filter' }, 'Node contains'), filter),
      h('div', { class: 'field' }, h('label', { for: 'agent-status' }, 'State'), statusSel),
    ),
    status,
    body,
    pager,
  );
  return { parts: ['agents'], refresh: load };
};

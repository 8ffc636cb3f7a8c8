/**
 * The overview: members by role, the meta leader, the slot table, the switches, agents, push latency
 * and the last errors. Re-fetched on every `overview` change of the live stream.
 */
import type { ConsoleMember, ConsoleOverview } from '../../../proto/console.js';
import { get } from './api.js';
import { badge, failed, type App, type Page, type PageFactory } from './app.js';
import { h, mount, table, type Child } from './dom.js';
import { ago, count, duration, time } from './format.js';
import { latencySparkline } from './sparkline.js';

const ROLES = ['meta', 'session', 'data'] as const;

function stat(label: string, value: Child): HTMLElement {
  return h('div', {}, h('dt', {}, label), h('dd', {}, value));
}

function card(title: string, ...children: Child[]): HTMLElement {
  const id = `card-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  const cls = title === 'Members' ? 'card wide' : 'card';
  return h('section', { class: cls, 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

function members(o: ConsoleOverview): HTMLElement {
  const row = (m: ConsoleMember): Child[] => [
    m.role,
    h('code', {}, m.id),
    [badge(m.up ? 'up' : 'down'), m.draining ? [' ', badge('draining')] : null],
    m.up ? duration(m.leaseLeftMs) : '–',
    m.address === '' ? '–' : h('code', {}, m.address),
    m.reachable ? 'yes' : badge('no answer', 'down'),
  ];
  const sorted = [...o.members].sort(
    (a, b) => ROLES.indexOf(a.role) - ROLES.indexOf(b.role) || a.id.localeCompare(b.id),
  );
  const byRole = ROLES.map((r) => {
    const of = o.members.filter((m) => m.role === r);
    return stat(r, `${of.filter((m) => m.up).length} up / ${of.length}`);
  });
  return card(
    'Members',
    h('dl', { class: 'stats' }, byRole),
    table(
      'Members by role',
      ['Role', 'ID', 'State', 'Lease left', 'Address', 'Answered'],
      sorted.map(row),
      'No members',
    ),
  );
}

function leaderAndSlots(o: ConsoleOverview): HTMLElement {
  const s = o.slots;
  const l = o.leader;
  return card(
    'Slot table',
    h(
      'dl',
      { class: 'stats' },
      stat('Meta leader', l.id === '' ? 'unknown' : [h('code', {}, l.id), l.self ? ' (this meta)' : '']),
      stat('Store', `${l.store}${l.storeHealthy ? '' : ' (not answering)'}`),
      stat('Fencing revision', l.fencingRevision),
      stat('Epoch', s.epoch),
      stat('Slots', s.slotCount),
      stat('Migrating', s.migrating.length === 0 ? 'none' : s.migrating.join(', ')),
    ),
    table(
      'Slots per data server',
      ['Data server', 'Leads', 'Follows'],
      s.servers.map((d) => [h('code', {}, d.id), d.led, d.followed]),
      'No slots arranged yet',
    ),
  );
}

function list(items: readonly string[]): Child {
  return items.length === 0 ? h('span', { class: 'muted' }, 'none') : items.join(', ');
}

function switches(o: ConsoleOverview): HTMLElement {
  return card(
    'Switches',
    h(
      'dl',
      { class: 'stats' },
      stat('Push', o.push.stopped ? badge('stopped', 'critical') : badge('on', 'passing')),
      o.push.stopped ? stat('Still pushed to', list(o.push.allow)) : null,
      stat('Client off', list(o.clientOff)),
      stat('Publish blacklist', list(o.publishBlacklist)),
      stat('Subscribe blacklist', list(o.subscribeBlacklist)),
      stat('Drained nodes', list(o.drained.nodes)),
      stat('Drained instances', list(o.drained.instances)),
    ),
    table(
      'Protection mode',
      ['Member', 'Holding', 'Held'],
      o.protection.map((p) => [`${p.role} ${p.id}`, p.active ? badge('active', 'warning') : 'no', p.held]),
      'No member reports protection mode',
    ),
  );
}

function agents(o: ConsoleOverview): HTMLElement {
  const a = o.agents;
  return card(
    'Agents',
    h('dl', { class: 'stats' }, stat('Connected', count(a.connected)), stat('Offline', count(a.offline))),
    table(
      'Offline agents',
      ['Node', 'Session', 'Held by', 'Since'],
      a.offlineAgents.map((x) => [x.node, h('code', {}, x.session), x.why, ago(x.since)]),
      'No offline agents',
    ),
  );
}

function latency(o: ConsoleOverview): HTMLElement {
  const w = o.pushLatency;
  const last = w[w.length - 1];
  const series = w.map((x) => ({ p50: x.p50Ms, p99: x.p99Ms }));
  const label =
    last === undefined
      ? 'No push latency measured yet'
      : `Push latency over the last ${w.length} windows; latest p50 ${last.p50Ms} ms, p99 ${last.p99Ms} ms`;
  return card(
    'Push latency',
    h(
      'dl',
      { class: 'stats' },
      stat('p50', h('span', { class: 'legend-p50' }, last === undefined ? '–' : `${last.p50Ms} ms`)),
      stat('p99', h('span', { class: 'legend-p99' }, last === undefined ? '–' : `${last.p99Ms} ms`)),
      stat('Pushes (last window)', last === undefined ? 0 : count(last.count)),
    ),
    latencySparkline(series, label),
    h('p', { class: 'muted' }, 'Send to acknowledgement, every session; oldest left.'),
  );
}

function errors(o: ConsoleOverview): HTMLElement {
  return card(
    'Last errors',
    table(
      'Recent error events, newest first',
      ['When', 'Member', 'Code', 'Message'],
      o.errors.slice(0, 10).map((e) => [time(e.at), `${e.role} ${e.member}`, e.code || '–', e.message]),
      'No errors',
    ),
  );
}

/** The overview's content for `o`. */
export function overviewContent(o: ConsoleOverview): HTMLElement {
  return h(
    'div',
    { class: 'grid' },
    members(o),
    leaderAndSlots(o),
    switches(o),
    agents(o),
    latency(o),
    errors(o),
  );
}

/** The overview page. */
export const overviewPage: PageFactory = (main: HTMLElement, _route, app: App): Page => {
  const body = h('div', { 'aria-live': 'off' });
  const stamp = h('p', { class: 'muted' });
  mount(main, h('h1', {}, 'Overview'), stamp, body);
  let version = '';
  return {
    parts: ['overview'],
    refresh: async () => {
      const r = await get<ConsoleOverview>('/admin/console/overview');
      if (!r.ok) {
        mount(body, failed('the overview', r));
        version = '';
        return;
      }
      stamp.textContent = `Updated ${time(r.value.generatedAt)} · as ${app.caller().name}`;
      if (r.value.version === version) return;
      version = r.value.version;
      mount(body, overviewContent(r.value));
    },
  };
};

/**
 * One service: its instances (node, zone, address:port, weights, metadata, checks with output), the
 * agents subscribed to it with the version each acknowledged, and drain per instance and per node.
 * There is no deregister button: the instance's agent owns it and would register it again.
 */
import type { ConsoleCheck, ConsoleInstance, ConsoleServiceDetail } from '../../../proto/console.js';
import { get, post } from './api.js';
import { badge, failed, writeButton, type App, type Page, type PageFactory } from './app.js';
import { h, mount, table, type Child } from './dom.js';
import { pageHref } from './router.js';

function checks(list: readonly ConsoleCheck[]): Child {
  if (list.length === 0) return h('span', { class: 'muted' }, 'no checks');
  return h(
    'ul',
    { class: 'checks' },
    list.map((c) =>
      h(
        'li',
        { 'data-check': c.id },
        badge(c.status),
        ' ',
        c.name || c.id,
        c.type === '' ? null : h('span', { class: 'muted' }, ` (${c.type})`),
        c.output === '' ? null : h('pre', { class: 'output' }, c.output),
      ),
    ),
  );
}

function metadata(m: Readonly<Record<string, string>>): Child {
  const entries = Object.entries(m);
  if (entries.length === 0) return h('span', { class: 'muted' }, 'none');
  return h(
    'dl',
    { class: 'stats' },
    entries.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v))),
  );
}

function drainButtons(app: App, service: string, i: ConsoleInstance, reload: () => void): Child {
  const restore = i.drainedBy !== '';
  const instanceWhat = `${restore ? 'Return' : 'Drain'} instance ${i.id} of ${service} on node ${i.node}: it stays registered but discovery ${restore ? 'routes to it again' : 'stops routing to it'}.`;
  return h(
    'div',
    { class: 'row' },
    writeButton(
      app,
      restore ? 'Undrain instance' : 'Drain instance',
      { title: restore ? 'Undrain instance' : 'Drain instance', what: instanceWhat },
      (reason) =>
        post('/admin/console/drain/instance', { node: i.node, id: i.id, drained: !restore, reason }),
      reload,
      'secondary',
    ),
    ' ',
    writeButton(
      app,
      i.drainedBy === 'node' ? 'Undrain node' : 'Drain node',
      {
        title: i.drainedBy === 'node' ? 'Undrain node' : 'Drain node',
        what: `${i.drainedBy === 'node' ? 'Return' : 'Drain'} every instance on node ${i.node}.`,
      },
      (reason) =>
        post('/admin/console/drain/node', { node: i.node, drained: i.drainedBy !== 'node', reason }),
      reload,
      'secondary',
    ),
  );
}

function instanceRow(app: App, d: ConsoleServiceDetail, i: ConsoleInstance, reload: () => void): HTMLElement {
  return h(
    'tr',
    { 'data-instance': i.id, 'data-node': i.node, 'data-health': i.health },
    h('th', { scope: 'row' }, h('code', {}, i.id)),
    h('td', {}, i.node),
    h('td', {}, [i.zone, i.region].filter((x) => x !== '').join(' / ') || '–'),
    h('td', {}, h('code', {}, `${i.address}:${i.port}`)),
    h('td', {}, `${i.weights.passing} / ${i.weights.warning}`),
    h('td', { class: 'health' }, badge(i.health), i.draining ? [' ', badge('draining')] : null),
    h('td', {}, checks(i.checks)),
    h('td', {}, metadata(i.metadata), i.tags.length > 0 ? h('p', {}, 'Tags: ', i.tags.join(', ')) : null),
    h('td', {}, drainButtons(app, d.name, i, reload)),
  );
}

function content(app: App, d: ConsoleServiceDetail, reload: () => void): Child[] {
  const heads = [
    'Instance',
    'Node',
    'Zone',
    'Address',
    'Weight (passing / warning)',
    'Health',
    'Checks',
    'Metadata',
    'Drain',
  ];
  return [
    h('p', { class: 'muted' }, `Version ${d.version} · slot ${d.slot} led by ${d.leader || 'nobody yet'}`),
    h('h2', {}, 'Instances'),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { id: 'instances-table' },
        h('caption', {}, `${d.instances.length} instances`),
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
          d.instances.length === 0
            ? h('tr', {}, h('td', { colspan: heads.length, class: 'muted' }, 'No instances'))
            : d.instances.map((i) => instanceRow(app, d, i, reload)),
        ),
      ),
    ),
    h('p', { class: 'note', id: 'no-deregister' }, 'No deregister button: ', d.deregisterNote),
    h('h2', {}, 'Subscribers'),
    table(
      'Agents watching this service and the version each acknowledged',
      ['Node', 'Session', 'Acknowledged version', 'Sent version'],
      d.subscribers.map((s) => [s.node || s.nodeId, h('code', {}, s.session), s.ackedVersion, s.sentVersion]),
      'No agent watches this service',
    ),
    d.unreachable.length > 0
      ? h('p', { class: 'error' }, `Not answering: ${d.unreachable.join(', ')}`)
      : null,
  ];
}

/** The service detail page. */
export const servicePage: PageFactory = (main, route, app): Page => {
  const body = h('div');
  mount(
    main,
    h('p', {}, h('a', { href: pageHref('services') }, '← Services')),
    h('h1', {}, 'Service ', h('code', {}, route.name)),
    body,
  );
  const load = async (): Promise<void> => {
    const r = await get<ConsoleServiceDetail>(`/admin/console/services/${encodeURIComponent(route.name)}`);
    if (!r.ok) {
      mount(body, failed(`service ${route.name}`, r));
      return;
    }
    mount(
      body,
      content(app, r.value, () => void load()),
    );
  };
  return { parts: ['services'], refresh: load };
};

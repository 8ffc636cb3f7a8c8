/**
 * Operations: push stop/resume (with the allow list), client-off, the blacklists, drain of a session
 * or data server and of a node. Each asks for confirmation and a reason; the audit log below shows
 * who did what, when and why. Every control is disabled for a read-only caller.
 */
import type { ConsoleAudit, ConsoleOverview } from '../../../proto/console.js';
import { get, post, withQuery, type ApiResult } from './api.js';
import { failed, writeButton, type App, type Page, type PageFactory } from './app.js';
import { h, mount, table, type Child } from './dom.js';
import { time } from './format.js';

const AUDIT_LIMIT = 200;

/** Entries typed as a list: separated by commas, spaces or new lines. */
export const entries = (text: string): string[] => text.split(/[\s,]+/).filter((x) => x !== '');

function panel(app: App, id: string, title: string, ...children: Child[]): HTMLElement {
  return h(
    'section',
    { class: 'card', 'aria-labelledby': `${id}-title` },
    h('h2', { id: `${id}-title` }, title),
    h('fieldset', { class: 'plain', disabled: !app.writable(), 'data-write': '' }, ...children),
  );
}

function input(id: string, label: string, hint: string): [HTMLElement, HTMLInputElement] {
  const el = h('input', { id, type: 'text', 'aria-describedby': `${id}-hint`, autocomplete: 'off' });
  return [
    h(
      'div',
      { class: 'field' },
      h('label', { for: id }, label),
      el,
      h('p', { class: 'muted', id: `${id}-hint` }, hint),
    ),
    el,
  ];
}

function pushPanel(app: App, o: ConsoleOverview, after: () => void): HTMLElement {
  const [allowField, allow] = input(
    'op-push-allow',
    'Still push to (while stopped)',
    'Agent IPs or node names, comma separated.',
  );
  allow.value = o.push.allow.join(', ');
  const set = (stopped: boolean) => (reason: string) =>
    post('/admin/switches/push', { stopped, ...(stopped ? { allow: entries(allow.value) } : {}), reason });
  return panel(
    app,
    'op-push',
    `Push switch (now ${o.push.stopped ? 'stopped' : 'on'})`,
    allowField,
    h(
      'div',
      { class: 'row' },
      writeButton(
        app,
        'Stop pushes',
        {
          title: 'Stop pushes',
          what: 'Stop every push to agents except the allow list; subscribers keep their last list.',
        },
        set(true),
        after,
        'danger',
      ),
      writeButton(
        app,
        'Resume pushes',
        { title: 'Resume pushes', what: 'Resume pushes to every agent.' },
        set(false),
        after,
      ),
    ),
  );
}

function listPanel(
  app: App,
  id: string,
  title: string,
  path: string,
  now: readonly string[],
  hint: string,
  after: () => void,
): HTMLElement {
  const [field, el] = input(`${id}-entries`, 'Entries', hint);
  const edit =
    (add: boolean) =>
    (reason: string): Promise<ApiResult<unknown>> =>
      post(
        path,
        add ? { add: entries(el.value), remove: [], reason } : { add: [], remove: entries(el.value), reason },
      );
  return panel(
    app,
    id,
    title,
    h('p', {}, 'Now: ', now.length === 0 ? h('span', { class: 'muted' }, 'none') : now.join(', ')),
    field,
    h(
      'div',
      { class: 'row' },
      writeButton(
        app,
        'Add',
        { title: `${title}: add`, what: `Add the typed entries to ${title.toLowerCase()}.` },
        edit(true),
        after,
      ),
      writeButton(
        app,
        'Remove',
        { title: `${title}: remove`, what: `Remove the typed entries from ${title.toLowerCase()}.` },
        edit(false),
        after,
        'secondary',
      ),
    ),
  );
}

function drainPanel(app: App, o: ConsoleOverview, after: () => void): HTMLElement {
  const drainable = o.members.filter((m) => m.role !== 'meta' && !m.draining);
  const select = h(
    'select',
    { id: 'op-drain-member' },
    drainable.map((m) => h('option', { value: m.id }, `${m.role} ${m.id}`)),
  );
  const [nodeField, node] = input(
    'op-drain-node',
    'Node',
    'Every instance of the node stays registered, out of discovery.',
  );
  return panel(
    app,
    'op-drain',
    'Drain',
    h('div', { class: 'field' }, h('label', { for: 'op-drain-member' }, 'Session or data server'), select),
    writeButton(
      app,
      'Drain member',
      {
        title: 'Drain member',
        what: 'Drain the chosen server: a session hands its agents to the others, a data server its slots.',
      },
      (reason) => post(`/admin/members/${encodeURIComponent(select.value)}/drain`, { reason }),
      after,
      'danger',
    ),
    nodeField,
    h(
      'div',
      { class: 'row' },
      ([true, false] as const).map((drained) =>
        writeButton(
          app,
          drained ? 'Drain node' : 'Undrain node',
          {
            title: drained ? 'Drain node' : 'Undrain node',
            what: `${drained ? 'Take every instance of the typed node out of' : 'Return every instance of the typed node to'} discovery.`,
          },
          (reason) => post('/admin/console/drain/node', { node: node.value.trim(), drained, reason }),
          after,
          drained ? '' : 'secondary',
        ),
      ),
    ),
  );
}

function audit(a: ConsoleAudit): Child[] {
  const where = a.persistence === 'store' ? 'kept in the meta store' : "this meta's memory";
  return [
    h('p', { class: 'muted' }, `${a.total} records held (${where}); newest first.`),
    table(
      'Who did what, when and why',
      ['When', 'Who', 'Action', 'Target', 'Reason', 'Result'],
      a.records.map((r) => [
        time(r.at),
        r.who,
        h('code', {}, r.action),
        r.target || '–',
        r.reason || '–',
        r.result,
      ]),
      'No operations yet',
    ),
  ];
}

/** The operations page. */
export const operationsPage: PageFactory = (main, _route, app): Page => {
  const forms = h('div', { class: 'ops' });
  const log = h('div', { id: 'audit' });
  mount(
    main,
    h('h1', {}, 'Operations'),
    app.writable()
      ? null
      : h('p', { class: 'note' }, 'Read-only: enter an admin token with write access to run operations.'),
    forms,
    h('section', { 'aria-labelledby': 'audit-title' }, h('h2', { id: 'audit-title' }, 'Audit log'), log),
  );
  const load = async (): Promise<void> => {
    const [o, a] = await Promise.all([
      get<ConsoleOverview>('/admin/console/overview'),
      get<ConsoleAudit>(withQuery('/admin/console/audit', { limit: AUDIT_LIMIT })),
    ]);
    const after = (): void => void load();
    const focused = document.activeElement;
    if (!o.ok) mount(forms, failed('the switches', o));
    // Redraw the forms only when nothing in them has focus, so typing is never lost.
    else if (focused === null || !forms.contains(focused)) {
      mount(
        forms,
        pushPanel(app, o.value, after),
        listPanel(
          app,
          'op-client-off',
          'Client off',
          '/admin/switches/client-off',
          o.value.clientOff,
          'Agent IPs or node names: refused, their publishers withdrawn.',
          after,
        ),
        listPanel(
          app,
          'op-pub-bl',
          'Publish blacklist',
          '/admin/switches/publish-blacklist',
          o.value.publishBlacklist,
          'Service names that may not be published.',
          after,
        ),
        listPanel(
          app,
          'op-sub-bl',
          'Subscribe blacklist',
          '/admin/switches/subscribe-blacklist',
          o.value.subscribeBlacklist,
          'Service names that may not be watched.',
          after,
        ),
        drainPanel(app, o.value, after),
      );
    }
    mount(log, a.ok ? audit(a.value) : failed('the audit log', a));
  };
  return { parts: ['overview', 'audit'], refresh: load };
};

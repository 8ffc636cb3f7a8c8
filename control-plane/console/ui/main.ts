/**
 * The console's shell: hash routing between the pages, the admin token form and the read-only
 * banner, and the live stream that makes the current page re-fetch when the registry changes.
 */
import type { ConsoleCaller, ConsoleOverview } from '../../../proto/console.js';
import { get } from './api.js';
import type { App, Page, PageFactory } from './app.js';
import { byId, controlById } from './dom.js';
import { LiveStream, type LiveState } from './live.js';
import { agentsPage } from './page-agents.js';
import { operationsPage } from './page-operations.js';
import { overviewPage } from './page-overview.js';
import { servicePage } from './page-service.js';
import { servicesPage } from './page-services.js';
import { parseRoute, type Route } from './router.js';
import { readToken, storeToken } from './token.js';

const PAGES: Readonly<Record<Route['page'], PageFactory>> = {
  overview: overviewPage,
  services: servicesPage,
  service: servicePage,
  agents: agentsPage,
  operations: operationsPage,
};

const ANONYMOUS: ConsoleCaller = { name: 'anonymous', access: 'read' };
let caller: ConsoleCaller = ANONYMOUS;
let page: Page | undefined;
let refreshing: Promise<void> | undefined;
let again = false;

const app: App = {
  caller: () => caller,
  writable: () => caller.access === 'write',
  say: (message, isError = false) => {
    const s = byId('status');
    s.textContent = message;
    s.classList.toggle('bad', isError);
  },
};

/** Learns who the token makes us; a refused token is forgotten (the page stays read-only). */
async function learnCaller(): Promise<void> {
  const r = await get<ConsoleOverview>('/admin/console/overview');
  const banner = byId('banner');
  if (r.ok) caller = r.value.you;
  else if ((r.status === 401 || r.status === 403) && readToken() !== '') {
    storeToken('');
    caller = ANONYMOUS;
    app.say(`The admin token was refused (${r.status} ${r.code}); it was forgotten.`, true);
    const retry = await get<ConsoleOverview>('/admin/console/overview');
    if (retry.ok) caller = retry.value.you;
  } else caller = ANONYMOUS;
  const writable = caller.access === 'write';
  banner.className = `banner ${writable ? 'writable' : 'read-only'}`;
  banner.textContent = writable
    ? `Signed in as ${caller.name} with write access: operations are enabled and audited.`
    : `Read-only console${caller.name === 'anonymous' ? '' : ` (token ${caller.name} can only read)`}: every write control is disabled. Enter an admin token with write access to run operations.`;
  document.body.dataset['access'] = caller.access;
}

/** Re-fetches the current page; calls while one runs fold into one more run. */
function refresh(): void {
  if (refreshing !== undefined) {
    again = true;
    return;
  }
  const current = page;
  refreshing = (current?.refresh() ?? Promise.resolve()).finally(() => {
    refreshing = undefined;
    if (again) {
      again = false;
      refresh();
    }
  });
}

function render(): void {
  const route = parseRoute(location.hash);
  const navPage = route.page === 'service' ? 'services' : route.page;
  for (const a of byId('nav').querySelectorAll('a')) {
    if (a.dataset['page'] === navPage) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const main = byId('main');
  page = PAGES[route.page](main, route, app);
  document.title = `${route.page === 'service' ? route.name : navPage} · meshreg console`;
  refreshing = undefined;
  refresh();
}

function setLive(state: LiveState): void {
  const el = byId('live');
  el.textContent = { connecting: 'connecting…', live: 'live', retrying: 'reconnecting…', stopped: 'stopped' }[
    state
  ];
  el.classList.toggle('on', state === 'live');
}

function wireToken(live: LiveStream): void {
  const form = controlById('token-form', HTMLFormElement);
  const field = controlById('token-input', HTMLInputElement);
  const apply = async (token: string): Promise<void> => {
    storeToken(token);
    field.value = '';
    await learnCaller();
    live.restart();
    render();
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void apply(field.value.trim());
  });
  byId('token-clear').addEventListener('click', () => {
    void apply('');
    app.say('Token forgotten: the console is read-only.');
  });
}

async function boot(): Promise<void> {
  const live = new LiveStream(
    '/admin/console/events',
    (c) => {
      if (c.parts.length === 0 || c.parts.some((p) => page?.parts.includes(p as never) === true)) refresh();
    },
    setLive,
  );
  wireToken(live);
  window.addEventListener('hashchange', () => {
    render();
    byId('main').focus();
  });
  // Draw at once as a reader; who the token makes us arrives alongside and redraws only if it can write.
  render();
  live.start();
  await learnCaller();
  if (caller.access === 'write') render();
}

void boot();

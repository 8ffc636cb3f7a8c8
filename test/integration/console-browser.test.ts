/**
 * The web console in a real headless Chromium against a real `meshreg dev` with registrations made
 * through the agent's Consul API: the overview shows members and the slot table, a new registration
 * appears on the services page without a reload, a failing check turns an instance critical on its
 * detail page, read-only without a token (and the API refuses writes), a drain with the token lands
 * in the audit log. Each page's screenshot is written to docs/screenshots/.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { ConsoleAudit, ConsoleServiceDetail } from '../../proto/console.js';
import { httpBase } from '../support/admin.js';
import {
  chromiumAvailable,
  CHROMIUM_PATH,
  launchChromium,
  screenshotPath,
  type LaunchedBrowser,
} from '../support/browser.js';
import { http } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const ADMIN = randomBytes(16).toString('hex');
const STEP_MS = 10_000;

describe('console browser', () => {
  let dev: Started | undefined;
  let browser: LaunchedBrowser | undefined;
  let cleanup: () => Promise<void> = () => Promise.resolve();
  /** The agent's HTTP base (the ready line prints it with or without the scheme). */
  const agent = (): string => {
    const a = dev?.addresses['agent'] ?? '';
    return /^https?:\/\//.test(a) ? a : `http://${a}`;
  };
  /** The console as a user opens it: the dev ready line's URL (else meta's `/ui/`). */
  const consoleUrl = (): string => {
    const printed = dev?.addresses['console'] ?? `${httpBase(dev?.addresses['meta'] ?? '')}/ui/`;
    return /^https?:\/\//.test(printed) ? printed : `http://${printed}`;
  };
  /** The console API next to it (same origin as the page). */
  const apiBase = (): string => new URL(consoleUrl()).origin;

  const register = async (id: string, name: string, port: number, extra: Record<string, unknown> = {}) => {
    const r = await http('PUT', `${agent()}/v1/agent/service/register`, {
      ID: id,
      Name: name,
      Port: port,
      Address: '127.0.0.1',
      Tags: ['v1'],
      Meta: { version: '1.2.3' },
      ...extra,
    });
    assert.equal(r.status, 200, r.text);
  };

  const open = async (hash: string): Promise<Page> => {
    assert.ok(browser !== undefined, 'browser');
    const page = await browser.context.newPage();
    page.setDefaultTimeout(STEP_MS);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${consoleUrl()}${hash}`);
    await page.locator('#banner:not(:empty)').waitFor();
    assert.deepEqual(errors, [], 'no script errors');
    return page;
  };

  const shot = async (page: Page, name: string): Promise<void> => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.screenshot({ path: await screenshotPath(name) });
  };

  before(async () => {
    const dir = await tempDir('meshreg-console-browser-');
    cleanup = dir.cleanup;
    dev = await startMeshreg('dev', {
      MESHREG_ADMIN_TOKEN: ADMIN,
      MESHREG_AGENT_DATA_DIR: dir.dir,
      MESHREG_SLOT_COUNT: '16',
    });
    await register('web-1', 'web', 8080, { Check: { TTL: '60s', Status: 'passing' } });
    await register('web-2', 'web', 8081);
    await register('billing-1', 'billing', 9090);
    if (chromiumAvailable()) browser = await launchChromium();
    else console.log(`console browser: no Chromium at ${CHROMIUM_PATH}; only the API checks run`);
  });

  after(async () => {
    await browser?.close();
    await dev?.stop();
    await cleanup();
  });

  test('console browser - the overview shows the members by role and the slot table', async (t) => {
    if (browser === undefined) return t.diagnostic('no Chromium on this machine: browser step not run');
    const page = await open('#/overview');
    const members = page.locator('table', { has: page.locator('caption', { hasText: 'Members by role' }) });
    for (const role of ['meta', 'session', 'data'])
      await members.locator('tbody tr', { hasText: role }).first().waitFor();
    await members.locator('.badge.up').first().waitFor();
    const slots = page.locator('table', {
      has: page.locator('caption', { hasText: 'Slots per data server' }),
    });
    await slots.locator('tbody tr').first().waitFor();
    // 16 slots, all led by the one data server of `meshreg dev`.
    await waitFor(
      'every slot led',
      async () => (await slots.locator('tbody td').nth(1).textContent()) === '16',
    );
    await page.getByText('Epoch').waitFor();
    await shot(page, 'overview.png');
    // A narrow window keeps the page usable: nothing wider than the viewport but the tables' own scroll.
    await page.setViewportSize({ width: 400, height: 800 });
    const width = Number(await page.evaluate('document.documentElement.scrollWidth'));
    assert.ok(width <= 400, `page width at a 400 px window: ${width}`);
    await page.close();
  });

  test('console browser - a registration through the Consul API appears on the services page within 2 s, no reload', async (t) => {
    if (browser === undefined) return t.diagnostic('no Chromium on this machine: browser step not run');
    const page = await open('#/services');
    await page.locator('tr[data-service="web"]').waitFor();
    await page.locator('#live.on').waitFor();
    await page.evaluate('window.__noReload = 42');
    const started = Date.now();
    await register('orders-1', 'orders', 7070);
    await page.locator('tr[data-service="orders"]').waitFor({ timeout: 2000 });
    const tookMs = Date.now() - started;
    t.diagnostic(`registration visible on the page after ${tookMs} ms`);
    assert.equal(await page.evaluate('window.__noReload'), 42, 'the page was not reloaded');
    // The filter narrows the list on the server.
    await page.getByLabel('Name contains').fill('bill');
    await page.locator('tr[data-service="web"]').waitFor({ state: 'detached' });
    await page.locator('tr[data-service="billing"]').waitFor();
    await page.getByLabel('Name contains').fill('');
    await page.locator('tr[data-service="web"]').waitFor();
    await shot(page, 'services.png');
    await page.close();
  });

  test('console browser - a failing check turns the instance critical on the detail page', async (t) => {
    if (browser === undefined) return t.diagnostic('no Chromium on this machine: browser step not run');
    const page = await open('#/services/web');
    const row = page.locator('tr[data-instance="web-1"]');
    await row.locator('.badge.passing').first().waitFor();
    const r = await http('PUT', `${agent()}/v1/agent/check/fail/service:web-1?note=disk%20full`);
    assert.equal(r.status, 200, r.text);
    await page.locator('tr[data-instance="web-1"][data-health="critical"]').waitFor();
    await row.getByText('disk full').waitFor();
    await page.locator('tr[data-instance="web-2"][data-health="passing"]').waitFor();
    await page.locator('#no-deregister').waitFor();
    await shot(page, 'service.png');
    await page.close();
  });

  test('console browser - without a token every write control is disabled and the API refuses writes', async (t) => {
    const refused = async (path: string, body: unknown): Promise<void> => {
      const r = await http('POST', `${apiBase()}${path}`, body, { 'content-type': 'application/json' });
      assert.ok(r.status === 401 || r.status === 403, `${path} without a token: ${r.status} ${r.text}`);
    };
    await refused('/admin/console/drain/instance', { node: 'x', id: 'web-1', reason: 'no token' });
    await refused('/admin/console/drain/node', { node: 'x', reason: 'no token' });
    const metaBase = httpBase(dev?.addresses['meta'] ?? '');
    for (const path of ['/admin/switches/push', '/admin/switches/client-off']) {
      const r = await http(
        'POST',
        `${metaBase}${path}`,
        { stopped: true, add: ['x'], remove: [] },
        {
          'content-type': 'application/json',
        },
      );
      assert.ok(r.status === 401 || r.status === 403, `${path} without a token: ${r.status}`);
    }
    const audit = (await http('GET', `${apiBase()}/admin/console/audit`)).body as ConsoleAudit;
    assert.ok(!audit.records.some((x) => x.result === 'ok'), 'no write went through');
    if (browser === undefined) return t.diagnostic('no Chromium on this machine: browser step not run');
    for (const hash of ['#/operations', '#/services/web']) {
      const page = await open(hash);
      await page.locator('.banner.read-only').waitFor();
      const controls = page.locator(
        'main button[data-write], main fieldset[data-write] :is(input, select, textarea, button)',
      );
      await controls.first().waitFor();
      const n = await controls.count();
      for (let i = 0; i < n; i++)
        assert.ok(await controls.nth(i).isDisabled(), `${hash}: write control ${i} enabled`);
      t.diagnostic(`${hash}: ${n} write controls, all disabled`);
      if (hash === '#/operations') await shot(page, 'operations-read-only.png');
      await page.close();
    }
  });

  test('console browser - a drain with the admin token works and lands in the audit log', async (t) => {
    if (browser === undefined) return t.diagnostic('no Chromium on this machine: browser step not run');
    const page = await open('#/services/web');
    await page.getByLabel('Admin token').fill(ADMIN);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.locator('.banner.writable').waitFor();
    assert.ok(!page.url().includes(ADMIN), 'the token is never in the URL');
    const row = page.locator('tr[data-instance="web-2"]');
    await row.getByRole('button', { name: 'Drain instance' }).click();
    const reason = `browser test drain ${randomBytes(3).toString('hex')}`;
    await page.getByLabel('Reason (written to the audit log)').fill(reason);
    await page.getByRole('button', { name: 'Confirm' }).click();
    await row.locator('.badge.draining').waitFor();
    const detail = (await http('GET', `${apiBase()}/admin/console/services/web`))
      .body as ConsoleServiceDetail;
    assert.equal(detail.instances.find((i) => i.id === 'web-2')?.drainedBy, 'instance');
    await page.getByRole('link', { name: 'Operations' }).click();
    const record = page.locator('#audit tbody tr', { hasText: reason });
    await record.waitFor();
    assert.match((await record.textContent()) ?? '', /instance\.drain/);
    await page.evaluate("document.getElementById('audit-title')?.scrollIntoView({ block: 'start' })");
    await shot(page, 'operations.png');
    await page.close();
  });

  test('console browser - keyboard: skip link first, pages reached by Tab and Enter; every page fits 400 px', async (t) => {
    if (browser === undefined) return t.diagnostic('no Chromium on this machine: browser step not run');
    const page = await open('#/overview');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate('document.activeElement?.textContent'), 'Skip to content');
    // Tab on to the Agents link of the navigation and follow it with Enter.
    for (let i = 0; i < 10; i++) {
      await page.keyboard.press('Tab');
      if ((await page.evaluate('document.activeElement?.textContent')) === 'Agents') break;
    }
    await page.keyboard.press('Enter');
    await page.locator('h1', { hasText: 'Agents' }).waitFor();
    assert.equal(await page.evaluate('document.activeElement?.id'), 'main', 'focus moves to the new page');
    await page.setViewportSize({ width: 400, height: 800 });
    for (const hash of ['#/overview', '#/services', '#/services/web', '#/agents', '#/operations']) {
      await page.goto(`${consoleUrl()}${hash}`);
      await page.locator('main h1').waitFor();
      await page.locator('main table').first().waitFor();
      const width = Number(await page.evaluate('document.documentElement.scrollWidth'));
      assert.ok(width <= 400, `${hash} at a 400 px window is ${width} px wide`);
    }
    await page.close();
  });

  test('console browser - the agents page lists the dev agent with its counts', async (t) => {
    if (browser === undefined) return t.diagnostic('no Chromium on this machine: browser step not run');
    const page = await open('#/agents');
    const row = page.locator('#agents-table tbody tr').first();
    await row.waitFor();
    await row.locator('.badge.passing', { hasText: 'online' }).waitFor();
    await shot(page, 'agents.png');
    await page.close();
  });
});

/**
 * `node dist/test/bench/console-load.js [--services 10000] [--loads 5] [--agents 10]`: how fast the
 * console's services page shows its first rows with 10,000 services registered. A real `meshreg
 * server` (every role in one process) takes the registrations from simulated agents (the agent's real
 * upstream code); headless Chromium then opens `/ui/#/services` on a fresh page several times and the
 * time from navigation to the first table row is reported (median, min, max) as a table and as JSON.
 * Also reported: the services API's own answer time for one page, and a filter's round trip in the
 * page. Reports, never asserts: the figure depends on the machine. Never part of `npm test`.
 */
import { request } from 'undici';
import { startCluster } from './cluster.js';
import { progress, until } from './progress.js';
import { SimAgent, openAll, stopAll } from './sim-agent.js';
import { summarize, type Summary } from './stats.js';
import type { ConsoleServicePage } from '../../proto/console.js';
import { httpBase } from '../support/admin.js';
import { chromiumAvailable, CHROMIUM_PATH, launchChromium } from '../support/browser.js';

interface Options {
  services: number;
  loads: number;
  agents: number;
}

function options(argv: readonly string[]): Options {
  const o: Options = { services: 10_000, loads: 5, agents: 10 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = (argv[i] ?? '').replace(/^--/, '');
    const v = Number(argv[i + 1]);
    if (!(key in o) || !Number.isInteger(v) || v < 1) throw new Error(`console-load: bad option ${argv[i]}`);
    o[key as keyof Options] = v;
  }
  return o;
}

async function servicesTotal(base: string): Promise<number> {
  const res = await request(`${base}/admin/console/services?limit=1`);
  const body = (await res.body.json()) as Partial<ConsoleServicePage>;
  return res.statusCode === 200 ? (body.total ?? 0) : 0;
}

/** Registers `o.services` services (one instance each) spread over `o.agents` simulated agents. */
async function register(url: string, base: string, o: Options): Promise<SimAgent[]> {
  const agents = Array.from({ length: o.agents }, (_, i) => new SimAgent(`console-load-${i}`, url));
  await openAll(agents, 30_000);
  for (let s = 0; s < o.services; s++) {
    const name = `svc-${String(s).padStart(5, '0')}`;
    agents[s % agents.length]?.register(name, `${name}-1`, 10_000 + (s % 50_000));
  }
  await until(
    `${o.services} services listed`,
    async () => (await servicesTotal(base)) >= o.services,
    120_000,
    200,
  );
  return agents;
}

async function apiTimes(base: string, n: number): Promise<Summary> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await request(`${base}/admin/console/services?limit=100&sort=-instances`);
    await res.body.text();
    ms.push(performance.now() - t0);
  }
  return summarize(ms);
}

async function pageTimes(base: string, o: Options): Promise<{ firstRows: Summary; filter: Summary }> {
  const browser = await launchChromium();
  try {
    const first: number[] = [];
    const filter: number[] = [];
    for (let i = 0; i < o.loads; i++) {
      const page = await browser.context.newPage();
      page.setDefaultTimeout(30_000);
      const t0 = performance.now();
      await page.goto(`${base}/ui/#/services`);
      await page.locator('#services-table tbody tr').first().waitFor();
      first.push(performance.now() - t0);
      const t1 = performance.now();
      // `svc-000i` matches ten services (svc-000i0 … svc-000i9): wait for the count to say so.
      await page.getByLabel('Name contains').fill(`svc-000${i % 10}`);
      await page.locator('#services-status', { hasText: /of 10$/ }).waitFor();
      filter.push(performance.now() - t1);
      await page.close();
    }
    return { firstRows: summarize(first), filter: summarize(filter) };
  } finally {
    await browser.close();
  }
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  if (!chromiumAvailable()) throw new Error(`console-load: no Chromium at ${CHROMIUM_PATH}`);
  const cluster = await startCluster({ split: false, env: { MESHREG_SLOT_COUNT: '64' } });
  const base = httpBase(cluster.procs['server']?.addresses['meta'] ?? '');
  let agents: SimAgent[] = [];
  try {
    progress('console-load', `registering ${o.services} services through ${o.agents} simulated agents`);
    agents = await register(cluster.url, base, o);
    progress('console-load', `timing the services API and ${o.loads} page loads`);
    const api = await apiTimes(base, 20);
    const page = await pageTimes(base, o);
    const result = {
      services: o.services,
      loads: o.loads,
      apiPageMs: api,
      ...page,
      problems: cluster.problems(),
    };
    const row = (what: string, s: Summary): string =>
      `| ${what} | ${s.p50.toFixed(0)} | ${s.min.toFixed(0)} | ${s.max.toFixed(0)} |`;
    process.stdout.write(
      [
        `| ${o.services} services | median ms | min ms | max ms |`,
        '|---|---:|---:|---:|',
        row('page load to first rows', page.firstRows),
        row('filter typed to new rows', page.filter),
        row('services API, one page of 100', api),
        '',
        JSON.stringify(result),
        '',
      ].join('\n'),
    );
  } finally {
    stopAll(agents);
    await cluster.stop();
  }
}

await main();

/**
 * `meshreg ctl`'s console commands: the same aggregated endpoints the web console reads
 * (`/admin/console/...` on meta), as tables or JSON, and the node and instance drains.
 */
import type { ConsoleOverview } from '../proto/console.js';
import { CONSOLE_ANSWERS } from '../proto/console-link.js';
import type { Decoded } from '../proto/validate.js';
import { renderTable } from './ctl-table.js';

/** What the commands need of `ctl`: requests to meta that stop at the first failure, and output. */
export interface ConsoleCtl {
  get<T>(path: string, decode: (raw: unknown) => Decoded<T>): Promise<T>;
  post<T>(path: string, decode: (raw: unknown) => Decoded<T>, body: object): Promise<T>;
  readonly json: boolean;
  readonly reason: string | undefined;
  out(s: string): void;
  usage(text: string): Error;
}

/** The console commands' names and usage lines (for `--help`). */
export const CONSOLE_USAGE = `  overview                             members, leader, slot table, switches, agents, latency, errors
  services [--filter s] [--health h] [--zone z] [--tag t] [--sort s] [--offset n] [--limit n]
                                       services with instance counts by health
  service-detail <name>                a service's instances, checks and subscribers
  agents [--filter s] [--status online|offline] [--offset n] [--limit n]
                                       every agent (node): session, contact, counts
  audit [--limit n]                    the audit log of admin writes, newest first
  drain-node <node> --reason <text>    mark every instance of a node draining (undrain-node restores)
  drain-instance <node> <id> --reason <text>
                                       mark one instance draining (undrain-instance restores)
`;

const COMMANDS = new Set([
  'overview',
  'services',
  'service-detail',
  'agents',
  'audit',
  'drain-node',
  'undrain-node',
  'drain-instance',
  'undrain-instance',
]);

/** True when `cmd` is one of the console commands. */
export function isConsoleCommand(cmd: string | undefined): boolean {
  return cmd !== undefined && COMMANDS.has(cmd);
}

/** Runs a console command. */
export async function consoleCommand(ctl: ConsoleCtl, cmd: string, rest: readonly string[]): Promise<void> {
  switch (cmd) {
    case 'overview':
      return overview(ctl, await ctl.get('/admin/console/overview', CONSOLE_ANSWERS.overview));
    case 'services': {
      const q = query(ctl, rest, ['filter', 'health', 'zone', 'tag', 'sort', 'offset', 'limit']);
      const page = await ctl.get(`/admin/console/services${q}`, CONSOLE_ANSWERS.services);
      if (ctl.json) return ctl.out(JSON.stringify(page));
      ctl.out(`${page.total} services (from ${page.offset})`);
      const rows = page.services.map((s) => ({ ...s, zones: s.zones.join(','), tags: s.tags.join(',') }));
      return ctl.out(
        renderTable(rows, ['name', 'instances', 'passing', 'warning', 'critical', 'zones', 'tags']),
      );
    }
    case 'service-detail': {
      const name = rest[0];
      if (name === undefined || name === '') throw ctl.usage('service-detail <name>');
      const d = await ctl.get(`/admin/console/services/${encodeURIComponent(name)}`, CONSOLE_ANSWERS.service);
      if (ctl.json) return ctl.out(JSON.stringify(d));
      ctl.out(`service ${d.name}, version ${d.version}, slot ${d.slot} led by ${d.leader}`);
      const inst = d.instances.map((i) => ({
        ...i,
        addr: `${i.address}:${i.port}`,
        checks: i.checks.length,
      }));
      ctl.out(renderTable(inst, ['id', 'node', 'zone', 'addr', 'health', 'draining', 'drainedBy', 'checks']));
      ctl.out('subscribers:');
      return ctl.out(renderTable(d.subscribers, ['node', 'session', 'ackedVersion', 'sentVersion']));
    }
    case 'agents': {
      const q = query(ctl, rest, ['filter', 'status', 'session', 'offset', 'limit']);
      const page = await ctl.get(`/admin/console/agents${q}`, CONSOLE_ANSWERS.agents);
      if (ctl.json) return ctl.out(JSON.stringify(page));
      ctl.out(`${page.total} agents`);
      return ctl.out(
        renderTable(page.agents, [
          'node',
          'zone',
          'session',
          'address',
          'offline',
          'registrations',
          'subscriptions',
        ]),
      );
    }
    case 'audit': {
      const q = query(ctl, rest, ['limit']);
      const a = await ctl.get(`/admin/console/audit${q}`, CONSOLE_ANSWERS.audit);
      if (ctl.json) return ctl.out(JSON.stringify(a));
      const rows = a.records.map((r) => ({ ...r, at: new Date(r.at).toISOString() }));
      return ctl.out(renderTable(rows, ['at', 'who', 'action', 'target', 'reason', 'result']));
    }
    default:
      return drain(ctl, cmd, rest);
  }
}

async function drain(ctl: ConsoleCtl, cmd: string, rest: readonly string[]): Promise<void> {
  const instance = cmd.endsWith('instance');
  const [node, id] = rest;
  if (node === undefined || (instance && id === undefined))
    throw ctl.usage(instance ? `${cmd} <node> <id> --reason <text>` : `${cmd} <node> --reason <text>`);
  if (ctl.reason === undefined) throw ctl.usage(`${cmd} needs --reason <text>`);
  const body = { node, ...(instance ? { id } : {}), drained: !cmd.startsWith('un'), reason: ctl.reason };
  const path = `/admin/console/drain/${instance ? 'instance' : 'node'}`;
  const d = await ctl.post(path, CONSOLE_ANSWERS.drained, body);
  if (ctl.json) return ctl.out(JSON.stringify(d));
  ctl.out(`drained nodes: ${d.nodes.join(', ') || '(none)'}`);
  ctl.out(`drained instances: ${d.instances.join(', ') || '(none)'}`);
}

/** `--name value` options of `names` as a query string ('' when none). */
function query(ctl: ConsoleCtl, rest: readonly string[], names: readonly string[]): string {
  const q = new URLSearchParams();
  for (let i = 0; i < rest.length; i += 2) {
    const k = rest[i]?.replace(/^--/, '') ?? '';
    const v = rest[i + 1];
    if (!rest[i]?.startsWith('--') || !names.includes(k) || v === undefined)
      throw ctl.usage(`options: ${names.map((n) => `--${n} <value>`).join(' ')}`);
    q.set(k, v);
  }
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

function overview(ctl: ConsoleCtl, o: ConsoleOverview): void {
  if (ctl.json) return ctl.out(JSON.stringify(o));
  ctl.out(
    `you: ${o.you.name} (${o.you.access}); leader: ${o.leader.id || '(another meta)'} [${o.leader.store}]`,
  );
  ctl.out(renderTable(o.members, ['id', 'role', 'up', 'leaseLeftMs', 'draining', 'reachable', 'address']));
  ctl.out(`slots: ${o.slots.slotCount}, epoch ${o.slots.epoch}, migrating ${o.slots.migrating.length}`);
  ctl.out(renderTable(o.slots.servers, ['id', 'led', 'followed']));
  ctl.out(`push: ${o.push.stopped ? `STOPPED (allow: ${o.push.allow.join(', ')})` : 'on'}`);
  ctl.out(`client-off: ${o.clientOff.join(', ')}`);
  ctl.out(
    `blacklists: publish ${o.publishBlacklist.join(', ')}; subscribe ${o.subscribeBlacklist.join(', ')}`,
  );
  ctl.out(`drained: nodes ${o.drained.nodes.join(', ')}; instances ${o.drained.instances.join(', ')}`);
  ctl.out(`agents: ${o.agents.connected} connected, ${o.agents.offline} offline`);
  const last = o.pushLatency[o.pushLatency.length - 1];
  if (last !== undefined) ctl.out(`push latency (last window): p50 ${last.p50Ms} ms, p99 ${last.p99Ms} ms`);
  if (o.errors.length > 0) ctl.out(renderTable(o.errors.slice(0, 10), ['role', 'member', 'code', 'message']));
}

/**
 * `meshreg ctl`: operates a cluster through meta's admin API. Tables for people, `--json` for
 * scripts. Meta is the entry point; for a service's replicas and for session connections the
 * command follows the member addresses meta returns, with the same token.
 */
import {
  decodeAdminConnections,
  decodeAdminDatum,
  decodeAdminMember,
  decodeAdminMembers,
  decodeAdminProtection,
  decodeAdminServiceReplicas,
  decodeAdminSlots,
  decodeAdminSwitches,
  type AdminConnection,
  type AdminDatum,
  type AdminProtection,
  type AdminReplica,
} from '../proto/admin-api.js';
import { ask, call, CtlError, ctlTls, type Ctx } from './ctl-client.js';
import { renderTable } from './ctl-table.js';
import { CONSOLE_USAGE, consoleCommand, isConsoleCommand } from './ctl-console.js';
import { FEDERATION_USAGE, federationCommand } from './ctl-federation.js';

const USAGE = `meshreg ctl — operate a meshreg cluster through meta's admin API

Usage: meshreg ctl [--meta <url>] [--token <token>] [--json] <command> [args]

Commands:
  members                              members (data and session servers) and their health
  slots                                the slot table: epoch and slots led per data server
  service <name>                       a service's datum and version on each replica
  connections                          the agent connections of every session server
  switches                             the switches in force
  push stop [--allow <a,b,...>]        stop all pushes (except to the listed addresses / node names)
  push resume                          resume pushes; held subscribers get the current state
  client-off <address|node>...         refuse these agents and withdraw their registrations
  client-on <address|node>...          let them back in
  blacklist publish|subscribe add|remove <service>...
                                       refuse publishing / subscribing these service names
  drain <member-id>                    hand a member's work to the others, then it exits
  protection                           protection mode of meta and every member: what each holds
  protection release                   remove exactly what protection mode holds, on every role
${CONSOLE_USAGE}${FEDERATION_USAGE}
Write commands take --reason <text>, recorded in the audit log (required by drain-node/-instance).

Options:
  --meta <url>     meta's address (http://host:port or its ws:// link URL) [MESHREG_CTL_META, http://127.0.0.1:9610]
  --token <token>  admin token [MESHREG_ADMIN_TOKEN]
  --json           print JSON instead of tables
`;

function usage(text: string): CtlError {
  return new CtlError(`usage: ${text}`, 2);
}

/** Parses options, runs one command, returns the exit code (0 ok, 1 failed, 2 usage). */
export async function runCtl(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const args = [...argv];
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  if (args.includes('--help') || args.includes('-h') || args.length === 0) {
    process.stdout.write(USAGE);
    return args.length === 0 ? 2 : 0;
  }
  const json = args.includes('--json');
  if (json) args.splice(args.indexOf('--json'), 1);
  const tls = ctlTls(env);
  if (typeof tls === 'string') {
    process.stderr.write(`meshreg ctl: ${tls}\n`);
    return 1;
  }
  const ctx: Ctx = {
    dispatcher: tls.dispatcher,
    meta: toHttp(opt('--meta') ?? env['MESHREG_CTL_META'] ?? tls.defaultMeta),
    token: opt('--token') ?? env['MESHREG_ADMIN_TOKEN'] ?? '',
    json,
    reason: opt('--reason'),
    out: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
  };
  try {
    await dispatch(ctx, args);
    return 0;
  } catch (err) {
    process.stderr.write(`meshreg ctl: ${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof CtlError ? err.exitCode : 1;
  }
}

function toHttp(url: string): string {
  return url
    .replace(/^ws(s?):\/\//, 'http$1://')
    .replace(/\/v1\/.*$/, '')
    .replace(/\/$/, '');
}

async function dispatch(ctx: Ctx, args: string[]): Promise<void> {
  const [cmd, ...rest] = args;
  if (isConsoleCommand(cmd))
    return consoleCommand(
      {
        get: (path, decode) => call(ctx, 'GET', `${ctx.meta}${path}`, decode),
        post: (path, decode, body) => call(ctx, 'POST', `${ctx.meta}${path}`, decode, body),
        json: ctx.json,
        reason: ctx.reason,
        out: ctx.out,
        usage,
      },
      cmd ?? '',
      rest,
    );
  if (cmd === 'federation')
    return federationCommand(
      {
        request: (method, path, decode, body) => call(ctx, method, `${ctx.meta}${path}`, decode, body),
        json: ctx.json,
        reason: ctx.reason,
        out: ctx.out,
        usage,
      },
      rest,
    );
  switch (cmd) {
    case 'members':
      return members(ctx);
    case 'slots':
      return slots(ctx);
    case 'service':
      return service(ctx, need(rest[0], 'service <name>'));
    case 'connections':
      return connections(ctx);
    case 'switches':
      return printRecord(ctx, await call(ctx, 'GET', `${ctx.meta}/admin/switches`, decodeAdminSwitches));
    case 'push':
      return push(ctx, rest);
    case 'client-off':
    case 'client-on':
      return editList(ctx, 'client-off', cmd === 'client-off' ? 'add' : 'remove', rest);
    case 'blacklist': {
      const [kind, op, ...names] = rest;
      if ((kind !== 'publish' && kind !== 'subscribe') || (op !== 'add' && op !== 'remove'))
        throw usage('blacklist publish|subscribe add|remove <service>...');
      return editList(ctx, `${kind}-blacklist`, op, names);
    }
    case 'drain': {
      const id = need(rest[0], 'drain <member-id>');
      const url = `${ctx.meta}/admin/members/${encodeURIComponent(id)}/drain`;
      return printRecord(ctx, await call(ctx, 'POST', url, decodeAdminMember, withReason(ctx, {})));
    }
    case 'protection':
      if (rest[0] !== undefined && rest[0] !== 'release') throw usage('protection [release]');
      return protection(ctx, rest[0] === 'release');
    default:
      throw usage(`unknown command "${cmd ?? ''}" (meshreg ctl --help)`);
  }
}

/** `body` with the `--reason` given, if any (the audit log records it). */
function withReason(ctx: Ctx, body: object): object {
  return ctx.reason === undefined ? body : { ...body, reason: ctx.reason };
}

function need(v: string | undefined, text: string): string {
  if (v === undefined || v === '') throw usage(text);
  return v;
}

async function members(ctx: Ctx): Promise<void> {
  const m = await call(ctx, 'GET', `${ctx.meta}/admin/members`, decodeAdminMembers);
  if (ctx.json) return ctx.out(JSON.stringify(m));
  ctx.out(renderTable(m.members, ['id', 'role', 'connected', 'leaseLeftMs', 'draining', 'http']));
}

async function push(ctx: Ctx, rest: string[]): Promise<void> {
  const [op, flag, list] = rest;
  const url = `${ctx.meta}/admin/switches/push`;
  if (op === 'resume')
    return printRecord(
      ctx,
      await call(ctx, 'POST', url, decodeAdminSwitches, withReason(ctx, { stopped: false })),
    );
  if (op !== 'stop') throw usage('push stop [--allow a,b] | push resume');
  const allow = flag === '--allow' ? need(list, 'push stop --allow <a,b,...>').split(',') : undefined;
  const body = allow === undefined ? { stopped: true } : { stopped: true, allow };
  return printRecord(ctx, await call(ctx, 'POST', url, decodeAdminSwitches, withReason(ctx, body)));
}

async function editList(ctx: Ctx, path: string, op: 'add' | 'remove', names: string[]): Promise<void> {
  if (names.length === 0) throw usage(`${path} needs at least one entry`);
  const body = op === 'add' ? { add: names } : { remove: names };
  return printRecord(
    ctx,
    await call(ctx, 'POST', `${ctx.meta}/admin/switches/${path}`, decodeAdminSwitches, withReason(ctx, body)),
  );
}

async function slots(ctx: Ctx): Promise<void> {
  const t = await call(ctx, 'GET', `${ctx.meta}/admin/slots`, decodeAdminSlots);
  if (ctx.json) return ctx.out(JSON.stringify(t));
  ctx.out(`epoch ${t.epoch}`);
  ctx.out(
    renderTable(
      Object.entries(t.leaders).map(([id, n]) => ({ leader: id, slots: n })),
      ['leader', 'slots'],
    ),
  );
}

/** One replica of a service as `ctl service` shows it: its datum, or why it could not be read. */
interface ReplicaRow {
  readonly replica: string;
  readonly role: AdminReplica['role'];
  readonly state?: AdminDatum['state'];
  readonly version?: number;
  readonly instances?: number;
  readonly datum?: AdminDatum;
  readonly error?: string;
}

async function replicaRow(ctx: Ctx, name: string, rep: AdminReplica): Promise<ReplicaRow> {
  const url = `${rep.http}/admin/datums/${encodeURIComponent(name)}`;
  const d = await ask(ctx, 'GET', url, decodeAdminDatum);
  if (!d.ok) return { replica: rep.id, role: rep.role, error: d.message };
  const { state, version, instances } = d.value;
  return { replica: rep.id, role: rep.role, state, version, instances: instances.length, datum: d.value };
}

async function service(ctx: Ctx, name: string): Promise<void> {
  const url = `${ctx.meta}/admin/services/${encodeURIComponent(name)}`;
  const r = await call(ctx, 'GET', url, decodeAdminServiceReplicas);
  const rows = await Promise.all(r.replicas.map((rep) => replicaRow(ctx, name, rep)));
  if (ctx.json) return ctx.out(JSON.stringify({ service: name, slot: r.slot, replicas: rows }));
  ctx.out(`service ${name}, slot ${r.slot}`);
  ctx.out(renderTable(rows, ['replica', 'role', 'state', 'version', 'instances', 'error']));
}

async function connections(ctx: Ctx): Promise<void> {
  const m = await call(ctx, 'GET', `${ctx.meta}/admin/members`, decodeAdminMembers);
  const rows: (AdminConnection & { readonly session: string })[] = [];
  for (const s of m.members.filter((x) => x.role === 'session')) {
    const c = await call(ctx, 'GET', `${s.http}/admin/connections`, decodeAdminConnections);
    for (const conn of c.connections) rows.push({ session: s.id, ...conn });
  }
  if (ctx.json) return ctx.out(JSON.stringify({ connections: rows }));
  ctx.out(renderTable(rows, ['session', 'nodeName', 'address', 'publishers', 'subscriptions', 'id']));
}

/** One role's protection as `ctl protection` shows it, or why it could not be asked. */
interface ProtectionRow {
  readonly member: string;
  readonly role?: AdminProtection['role'];
  readonly active?: boolean;
  readonly held?: number;
  readonly removed?: number;
  readonly ids?: string;
  readonly answer?: AdminProtection;
  readonly error?: string;
}

/**
 * Asks (or, with `release`, releases) protection mode on meta and on every member meta lists: each
 * role holds its own removals. A member that cannot be reached is a row with its error, and the
 * command fails after printing every row.
 */
async function protection(ctx: Ctx, release: boolean): Promise<void> {
  const m = await call(ctx, 'GET', `${ctx.meta}/admin/members`, decodeAdminMembers);
  const targets = [
    { member: 'meta', http: ctx.meta },
    ...m.members.map((x) => ({ member: x.id, http: x.http })),
  ];
  const rows = await Promise.all(
    targets.map(async ({ member, http }): Promise<ProtectionRow> => {
      const path = release ? '/admin/protection/release' : '/admin/protection';
      const body = release ? withReason(ctx, {}) : undefined;
      const a = await ask(ctx, release ? 'POST' : 'GET', `${http}${path}`, decodeAdminProtection, body);
      if (!a.ok) return { member, error: a.message };
      const p = a.value;
      const ids = (release ? (p.removed ?? []) : p.held).join(', ');
      const counts = { held: p.held.length, removed: p.removed?.length ?? 0 };
      return { member, role: p.role, active: p.active, ...counts, ids, answer: p };
    }),
  );
  if (ctx.json)
    ctx.out(
      JSON.stringify({ protection: rows.map((r) => r.answer ?? { member: r.member, error: r.error }) }),
    );
  else ctx.out(renderTable(rows, ['member', 'role', 'active', 'held', 'removed', 'ids', 'error']));
  const failed = rows.filter((r) => r.error !== undefined).length;
  if (failed > 0) throw new CtlError(`${failed} of ${rows.length} roles could not be reached`);
}

/** Prints a flat answer (switches, a member) as field/value rows, or as JSON. */
function printRecord(ctx: Ctx, body: object): void {
  if (ctx.json) return ctx.out(JSON.stringify(body));
  const rows = Object.entries(body).map(([k, v]: [string, unknown]) => ({
    field: k,
    value: Array.isArray(v) ? v.join(', ') : String(v),
  }));
  ctx.out(renderTable(rows, ['field', 'value']));
}

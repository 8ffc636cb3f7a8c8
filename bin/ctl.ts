/**
 * `meshreg ctl`: operates a cluster through meta's admin API. Tables for people, `--json` for
 * scripts. Meta is the entry point; for a service's replicas and for session connections the
 * command follows the member addresses meta returns, with the same token.
 */
import { request } from 'undici';
import { renderTable } from './ctl-table.js';

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

Options:
  --meta <url>     meta's address (http://host:port or its ws:// link URL) [MESHREG_CTL_META, http://127.0.0.1:9610]
  --token <token>  admin token [MESHREG_ADMIN_TOKEN]
  --json           print JSON instead of tables
`;

interface Ctx {
  readonly meta: string;
  readonly token: string;
  readonly json: boolean;
  readonly out: (s: string) => void;
}

class CtlError extends Error {}

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
  const ctx: Ctx = {
    meta: toHttp(opt('--meta') ?? env['MESHREG_CTL_META'] ?? 'http://127.0.0.1:9610'),
    token: opt('--token') ?? env['MESHREG_ADMIN_TOKEN'] ?? '',
    json,
    out: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
  };
  try {
    await dispatch(ctx, args);
    return 0;
  } catch (err) {
    process.stderr.write(`meshreg ctl: ${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof CtlError && err.message.startsWith('usage') ? 2 : 1;
  }
}

function toHttp(url: string): string {
  return url
    .replace(/^ws(s?):\/\//, 'http$1://')
    .replace(/\/v1\/.*$/, '')
    .replace(/\/$/, '');
}

async function call(ctx: Ctx, method: 'GET' | 'POST', url: string, body?: unknown): Promise<unknown> {
  const res = await request(url, {
    method,
    headers: { authorization: `Bearer ${ctx.token}`, 'content-type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
  });
  const text = await res.body.text();
  const parsed: unknown = text === '' ? undefined : JSON.parse(text);
  if (res.statusCode >= 400) {
    const e = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new CtlError(`${method} ${url}: ${res.statusCode} ${e?.code ?? ''}: ${e?.message ?? text}`);
  }
  return parsed;
}

async function dispatch(ctx: Ctx, args: string[]): Promise<void> {
  const [cmd, ...rest] = args;
  switch (cmd) {
    case 'members':
      return show(ctx, await call(ctx, 'GET', `${ctx.meta}/admin/members`), 'members', [
        'id',
        'role',
        'connected',
        'leaseLeftMs',
        'draining',
        'http',
      ]);
    case 'slots':
      return slots(ctx);
    case 'service':
      return service(ctx, need(rest[0], 'usage: service <name>'));
    case 'connections':
      return connections(ctx);
    case 'switches':
      return printRecord(ctx, await call(ctx, 'GET', `${ctx.meta}/admin/switches`));
    case 'push':
      return push(ctx, rest);
    case 'client-off':
    case 'client-on':
      return editList(ctx, 'client-off', cmd === 'client-off' ? 'add' : 'remove', rest);
    case 'blacklist': {
      const [kind, op, ...names] = rest;
      if ((kind !== 'publish' && kind !== 'subscribe') || (op !== 'add' && op !== 'remove'))
        throw new CtlError('usage: blacklist publish|subscribe add|remove <service>...');
      return editList(ctx, `${kind}-blacklist`, op, names);
    }
    case 'drain': {
      const id = need(rest[0], 'usage: drain <member-id>');
      return printRecord(
        ctx,
        await call(ctx, 'POST', `${ctx.meta}/admin/members/${encodeURIComponent(id)}/drain`),
      );
    }
    default:
      throw new CtlError(`usage: unknown command "${cmd ?? ''}" (meshreg ctl --help)`);
  }
}

function need(v: string | undefined, usage: string): string {
  if (v === undefined || v === '') throw new CtlError(usage);
  return v;
}

async function push(ctx: Ctx, rest: string[]): Promise<void> {
  const [op, flag, list] = rest;
  if (op === 'resume')
    return printRecord(ctx, await call(ctx, 'POST', `${ctx.meta}/admin/switches/push`, { stopped: false }));
  if (op !== 'stop') throw new CtlError('usage: push stop [--allow a,b] | push resume');
  const allow = flag === '--allow' ? need(list, 'usage: push stop --allow <a,b,...>').split(',') : undefined;
  const body = allow === undefined ? { stopped: true } : { stopped: true, allow };
  return printRecord(ctx, await call(ctx, 'POST', `${ctx.meta}/admin/switches/push`, body));
}

async function editList(ctx: Ctx, path: string, op: 'add' | 'remove', names: string[]): Promise<void> {
  if (names.length === 0) throw new CtlError(`usage: ${path} needs at least one entry`);
  const body = op === 'add' ? { add: names } : { remove: names };
  return printRecord(ctx, await call(ctx, 'POST', `${ctx.meta}/admin/switches/${path}`, body));
}

async function slots(ctx: Ctx): Promise<void> {
  const t = (await call(ctx, 'GET', `${ctx.meta}/admin/slots`)) as {
    epoch: number;
    leaders: Record<string, number>;
  };
  if (ctx.json) return ctx.out(JSON.stringify(t));
  ctx.out(`epoch ${t.epoch}`);
  ctx.out(
    renderTable(
      Object.entries(t.leaders).map(([id, n]) => ({ leader: id, slots: n })),
      ['leader', 'slots'],
    ),
  );
}

async function service(ctx: Ctx, name: string): Promise<void> {
  const r = (await call(ctx, 'GET', `${ctx.meta}/admin/services/${encodeURIComponent(name)}`)) as {
    slot: number;
    replicas: { id: string; role: string; http: string }[];
  };
  const rows = await Promise.all(
    r.replicas.map(async (rep) => {
      try {
        const d = (await call(ctx, 'GET', `${rep.http}/admin/datums/${encodeURIComponent(name)}`)) as {
          version: number;
          state: string;
          instances: unknown[];
        };
        return {
          replica: rep.id,
          role: rep.role,
          state: d.state,
          version: d.version,
          instances: d.instances.length,
          datum: d,
        };
      } catch (err) {
        return { replica: rep.id, role: rep.role, error: err instanceof Error ? err.message : String(err) };
      }
    }),
  );
  if (ctx.json) return ctx.out(JSON.stringify({ service: name, slot: r.slot, replicas: rows }));
  ctx.out(`service ${name}, slot ${r.slot}`);
  ctx.out(renderTable(rows, ['replica', 'role', 'state', 'version', 'instances', 'error']));
}

async function connections(ctx: Ctx): Promise<void> {
  const m = (await call(ctx, 'GET', `${ctx.meta}/admin/members`)) as {
    members: { id: string; role: string; http: string }[];
  };
  const rows: Record<string, unknown>[] = [];
  for (const s of m.members.filter((x) => x.role === 'session')) {
    const c = (await call(ctx, 'GET', `${s.http}/admin/connections`)) as {
      connections: Record<string, unknown>[];
    };
    for (const conn of c.connections) rows.push({ session: s.id, ...conn });
  }
  if (ctx.json) return ctx.out(JSON.stringify({ connections: rows }));
  ctx.out(renderTable(rows, ['session', 'nodeName', 'address', 'publishers', 'subscriptions', 'id']));
}

function show(ctx: Ctx, body: unknown, key: string, columns: readonly string[]): void {
  if (ctx.json) return ctx.out(JSON.stringify(body));
  const rows = (body as Record<string, Record<string, unknown>[] | undefined>)[key] ?? [];
  ctx.out(renderTable(rows, columns));
}

function printRecord(ctx: Ctx, body: unknown): void {
  if (ctx.json) return ctx.out(JSON.stringify(body));
  const rows = Object.entries(body as Record<string, unknown>).map(([k, v]) => ({
    field: k,
    value: Array.isArray(v) ? v.join(', ') : String(v),
  }));
  ctx.out(renderTable(rows, ['field', 'value']));
}

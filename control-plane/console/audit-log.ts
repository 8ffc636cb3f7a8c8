/**
 * The audit log of admin writes: who (the token's name), what, on what, why, and how it ended. Kept
 * in this meta's memory, bounded to the last {@link AUDIT_MAX_RECORDS}; a restarted meta starts an
 * empty one. {@link audited} wraps the write routes so that every one of them is recorded, refused or
 * not, after it ran.
 */
import type { ConsoleAudit, ConsoleAuditRecord } from '../../proto/console.js';
import { MeshregError } from '../../proto/errors.js';
import { isRecord } from '../../proto/validate.js';
import type { AdminRequest, AdminResult, AdminRoute } from '../admin/ops-http.js';

/** Records kept. */
export const AUDIT_MAX_RECORDS = 10_000;
/** Longest reason kept. */
export const MAX_REASON_LENGTH = 512;

/** A bounded, append-only log (oldest dropped first). */
export class AuditLog {
  readonly #max: number;
  #records: ConsoleAuditRecord[] = [];
  #appended = 0;

  constructor(max = AUDIT_MAX_RECORDS) {
    this.#max = max;
  }

  /** Records appended since start: grows with every write (the console's change signal). */
  get appended(): number {
    return this.#appended;
  }

  append(r: ConsoleAuditRecord): void {
    this.#records.push(r);
    this.#appended++;
    // Trimmed in batches so an append stays O(1) amortised.
    if (this.#records.length > this.#max * 1.1) this.#records = this.#records.slice(-this.#max);
  }

  /** The newest `limit` records, newest first. */
  view(limit: number): ConsoleAudit {
    const held = this.#records.slice(-this.#max);
    return { records: held.slice(-limit).reverse(), total: held.length, persistence: 'memory' };
  }
}

/** What a write acted on, read from its request. */
export interface AuditSpec {
  readonly action: string | ((req: AdminRequest) => string);
  target(req: AdminRequest): string;
  /** The reason must be given (the console's own routes); else '' is recorded when absent. */
  readonly reasonRequired?: boolean;
}

/** The `reason` of a write's body: '' when absent; 400 naming `reason` when required or malformed. */
export function reasonOf(body: unknown, required: boolean): string {
  const raw = isRecord(body) ? body['reason'] : undefined;
  if (raw === undefined && !required) return '';
  if (typeof raw !== 'string' || raw.trim() === '' || raw.length > MAX_REASON_LENGTH)
    throw new MeshregError(
      'invalid_argument',
      `reason: must be a text of 1..${MAX_REASON_LENGTH} characters`,
      {
        fields: [{ path: 'reason', message: `must be a text of 1..${MAX_REASON_LENGTH} characters` }],
      },
    );
  return raw.trim();
}

/** `route`, recording each call in `log` with its caller, target, reason and outcome. */
export function audited(log: AuditLog, route: AdminRoute, spec: AuditSpec): AdminRoute {
  const handler = async (req: AdminRequest): Promise<AdminResult> => {
    const action = typeof spec.action === 'string' ? spec.action : spec.action(req);
    const base = { at: Date.now(), who: req.caller.name, action, target: safeTarget(spec, req) };
    let reason = '';
    try {
      reason = reasonOf(req.body, spec.reasonRequired === true);
      const result = await route.handler(req);
      log.append({ ...base, reason, result: result.status < 400 ? 'ok' : String(result.status) });
      return result;
    } catch (err) {
      log.append({ ...base, reason, result: err instanceof MeshregError ? err.code : 'internal' });
      throw err;
    }
  };
  return { ...route, handler };
}

function safeTarget(spec: AuditSpec, req: AdminRequest): string {
  try {
    return spec.target(req).slice(0, 1024);
  } catch {
    return '';
  }
}

/** The entries a list edit (`{add, remove}`) names, as an audit target. */
export function listTarget(req: AdminRequest): string {
  const b = req.body;
  if (!isRecord(b)) return '';
  const list = (k: string, sign: string): string[] =>
    Array.isArray(b[k]) ? (b[k] as unknown[]).filter((x) => typeof x === 'string').map((x) => sign + x) : [];
  return [...list('add', '+'), ...list('remove', '-')].join(' ');
}

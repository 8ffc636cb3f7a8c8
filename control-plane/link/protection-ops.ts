/**
 * What each role shows of its {@link Protection}: `/health` turns `degraded` with the reason while
 * removals are held, the gauges `meshreg_protection_active` and `meshreg_protection_held` (by role),
 * and the admin routes `GET /admin/protection` and `POST /admin/protection/release`.
 */
import type { AdminProtection } from '../../proto/admin-api.js';
import { observeGauges } from '../../proto/runtime/telemetry.js';
import type { AdminRoute } from '../admin/ops-http.js';
import type { Logger } from '../../proto/runtime/log.js';
import { DEFAULT_PROTECTION, Protection, type ProtectionOptions } from './protection.js';

/** A role's protection and how its held items are removed on release. */
export interface ProtectionHost {
  readonly role: AdminProtection['role'];
  readonly kind: AdminProtection['kind'];
  /** The role's ID as the admin API shows it. */
  id(): string;
  /** Its owner removes what a release hands back ({@link Protection.onRelease}). */
  readonly protection: Protection;
}

/** A role's protection, its gauges registered; `unregister` removes them when the role stops. */
export type RoleProtection = ProtectionHost & { readonly unregister: () => void };

/**
 * Makes a role's protection (thresholds `opts`, {@link DEFAULT_PROTECTION} when absent), with
 * `remove` carrying out what a release hands back, and registers its gauges.
 */
export function roleProtection(
  base: Omit<ProtectionHost, 'protection'>,
  opts: ProtectionOptions | undefined,
  log: Logger,
  remove?: (id: string) => void,
): RoleProtection {
  const protection = new Protection(base.kind, opts ?? DEFAULT_PROTECTION, log);
  if (remove !== undefined)
    protection.onRelease((ids) => {
      for (const id of ids) remove(id);
    });
  const host = { ...base, protection };
  return { ...host, unregister: registerProtectionMetrics(host) };
}

/** The admin body of `host`'s protection. */
export function protectionView(host: ProtectionHost): AdminProtection {
  return { role: host.role, id: host.id(), kind: host.kind, ...host.protection.status() };
}

/** Releases `host`'s protection: removes exactly what was held, and says what. */
export function releaseProtection(host: ProtectionHost): AdminProtection {
  const removed = host.protection.release();
  return { ...protectionView(host), removed };
}

/** The two admin routes of protection mode, on every role. */
export function protectionRoutes(host: ProtectionHost): AdminRoute[] {
  return [
    {
      method: 'GET',
      path: '/admin/protection',
      handler: () => ({ status: 200, body: protectionView(host) }),
    },
    {
      method: 'POST',
      path: '/admin/protection/release',
      handler: () => ({ status: 200, body: releaseProtection(host) }),
    },
  ];
}

/**
 * `health` with protection's word on it: while removals are held the role is `degraded`, with the
 * reason and what is held (a degraded store or anything else already said stays).
 */
export function withProtection(
  health: Record<string, unknown>,
  host: Pick<ProtectionHost, 'protection' | 'kind'>,
): Record<string, unknown> {
  const s = host.protection.status();
  if (!s.active) return { ...health, protection: { active: false } };
  return {
    ...health,
    status: 'degraded',
    reason: `protection mode: ${s.held.length} ${host.kind} held instead of removed (${s.removedInWindow} removed in the last ${s.windowMs} ms)`,
    protection: { active: true, held: s.held.length, removedInWindow: s.removedInWindow },
  };
}

/** Registers the protection gauges of a role; returns their unregistration. */
export function registerProtectionMetrics(host: Pick<ProtectionHost, 'protection' | 'role'>): () => void {
  return observeGauges(
    [
      {
        name: 'meshreg.protection.active',
        description: '1 while protection mode holds removals in this role',
        read: (o) => o(host.protection.active ? 1 : 0),
      },
      {
        name: 'meshreg.protection.held',
        description: 'Removals held by protection mode (members, sessions or connections)',
        read: (o) => o(host.protection.status().held.length),
      },
      {
        name: 'meshreg.protection.released',
        description: 'Held removals carried out by operator releases',
        counter: true,
        read: (o) => o(host.protection.status().released),
      },
    ],
    { role: host.role },
  );
}

/**
 * What each agent connection of a session may do, from the token of its hello: the node it may
 * connect as, the services it may publish (write) and watch (read). A session keeps one
 * {@link AgentGrants}; it checks hellos, publishes and subscriptions, and re-checks the live
 * connections after the tokens were reloaded.
 *
 * Live connections of a revoked token are closed at the reload (`unauthorized`), and those whose
 * token no longer allows their node are closed `forbidden`: a token is revoked because it leaked,
 * and a holder that stayed connected would keep publishing. (Consul checks a token per request; a
 * meshreg agent makes one long-lived connection, so the re-check at reload plays that part.)
 */
import type { ConfirmResult, Registration } from '../../proto/agent-link.js';
import type { ErrorCode } from '../../proto/errors.js';
import { mayRead, mayWrite, nodeAllowed, type TokenGrant } from './token-policy.js';
import type { AgentAuthenticator } from './token-store.js';

/** Why a connection is refused or closed. */
export interface GrantRefusal {
  readonly code: ErrorCode;
  readonly reason: string;
}

interface Held {
  readonly token: string;
  readonly nodeName: string;
  grant: TokenGrant;
}

/** The grants of a session's agent connections, by connection ID. */
export class AgentGrants {
  readonly #auth: AgentAuthenticator;
  readonly #held = new Map<string, Held>();

  constructor(auth: AgentAuthenticator) {
    this.#auth = auth;
  }

  /** Checks a hello's token and node name; on success the connection holds the token's grant. */
  admit(connId: string, token: string, nodeName: string): GrantRefusal | undefined {
    const checked = check(this.#auth, token, nodeName);
    if ('code' in checked) return checked;
    this.#held.set(connId, { token, nodeName, grant: checked });
    return undefined;
  }

  /** The grant a connection holds (undefined before its hello). */
  grantOf(connId: string): TokenGrant | undefined {
    return this.#held.get(connId)?.grant;
  }

  /** Why `service` may not be published on this connection, or undefined when it may. */
  publishRefusal(connId: string, service: string): string | undefined {
    const grant = this.grantOf(connId);
    if (grant !== undefined && mayWrite(grant, service)) return undefined;
    return `token "${grant?.name ?? '?'}" may not publish "${service}"`;
  }

  /** Why `service` may not be watched on this connection, or undefined when it may. */
  subscribeRefusal(connId: string, service: string): string | undefined {
    const grant = this.grantOf(connId);
    if (grant !== undefined && mayRead(grant, service)) return undefined;
    return `token "${grant?.name ?? '?'}" may not watch "${service}"`;
  }

  /** After the tokens were reloaded: the connections to close and why; the others get the new grant. */
  recheck(): Map<string, GrantRefusal> {
    const closing = new Map<string, GrantRefusal>();
    for (const [id, held] of this.#held) {
      const checked = check(this.#auth, held.token, held.nodeName);
      if ('code' in checked) {
        closing.set(id, checked.code === 'unauthorized' ? { ...checked, reason: 'token revoked' } : checked);
        this.#held.delete(id);
      } else held.grant = checked;
    }
    return closing;
  }

  /** Forgets a closed connection. */
  forget(connId: string): void {
    this.#held.delete(connId);
  }
}

function check(auth: AgentAuthenticator, token: string, nodeName: string): TokenGrant | GrantRefusal {
  const grant = auth.authenticate(token);
  if (grant === undefined)
    return { code: 'unauthorized', reason: token === '' ? 'missing token' : 'wrong token' };
  if (!nodeAllowed(grant, nodeName))
    return { code: 'forbidden', reason: `token "${grant.name}" may not connect as node "${nodeName}"` };
  return grant;
}

/**
 * Splits a publish into what may go on and the refusals of the rest: `refusal` says why an item is
 * refused (`forbidden`), or undefined to let it pass.
 */
export function splitPublish(
  registrations: readonly Registration[],
  refusal: (service: string) => string | undefined,
): { allowed: Registration[]; refused: ConfirmResult[] } {
  const allowed: Registration[] = [];
  const refused: ConfirmResult[] = [];
  for (const r of registrations) {
    const message = refusal(r.instance.service);
    if (message === undefined) allowed.push(r);
    else
      refused.push({
        op: 'publish',
        id: r.instance.id,
        version: r.version,
        error: { code: 'forbidden', message },
      });
  }
  return { allowed, refused };
}

/**
 * This process's nonce, said in every server-link hello, so that a role can tell the members of its
 * own process (a `meshreg server` or `meshreg dev` running several roles) from those behind a network
 * link. A local member lives exactly as long as this process: it is never expired by a lease or a
 * grace period, since a stall that silences it silences the judge too.
 */
import { randomBytes } from 'node:crypto';
import type { LinkHello } from '../../proto/rpc.js';

/** Random per process (not secret: it only says "same process", and hellos are token-checked). */
export const PROCESS_NONCE = randomBytes(12).toString('hex');

/** True when `hello` comes from a role of this very process. */
export function isLocal(hello: LinkHello): boolean {
  return hello.process === PROCESS_NONCE;
}

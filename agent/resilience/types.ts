// Shapes the resilience units share. Every unit takes the time as a parameter or through the
// small Clock the lb units also use, so tests move a fake clock instead of sleeping.
import { monotonicClock, type Clock } from '../lb/types.js';

export { monotonicClock, type Clock };

/**
 * How one attempt to an endpoint ended, as the proxy saw it. String literals and numbers, so
 * reporting an outcome allocates nothing.
 *
 * - 'connect-failure': no connection (TCP refused/unreachable, TLS handshake failed, connect
 *   timeout). Only for attempts of which *no byte* reached the endpoint.
 * - 'reset': the connection broke after the request (or part of it) was written, before a
 *   response head arrived.
 * - 'timeout': the per-try timeout passed with no response head.
 * - a number: the HTTP status of the response head.
 */
export type Outcome = 'connect-failure' | 'reset' | 'timeout' | number;

/** Whether an outcome counts as a failure of the endpoint: any 5xx, or no response at all. */
export function isFailureOutcome(outcome: Outcome): boolean {
  return typeof outcome === 'number' ? outcome >= 500 && outcome <= 599 : true;
}

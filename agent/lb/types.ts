// The shapes every load-balancing unit shares. Nothing here depends on the rest of the agent, so the
// algorithms are tested with a fake clock and a seeded random source, no sockets, no sleeps.
//
// Who filters what: a balancer is handed the *eligible* endpoints (healthy and not ejected) and
// only ever chooses among them. The caller does not filter per request: `EligibleSet` keeps that list
// and rebuilds it only when the endpoint set, a health flag or an ejection changes, so per request
// the proxy passes the same cached array again and again. Balancers keep their per-endpoint state
// (in-flight counts, latency estimates) in maps keyed by a stable string, the endpoint's key (the
// host name for `shared/protocol.ts` endpoints), so that state survives endpoint-set updates, health
// flaps and ejections: a returning endpoint keeps what was learned about it.

/** Milliseconds from an arbitrary origin. Only differences matter; monotonic is best. */
export interface Clock {
  now(): number;
}

/**
 * Uniform random integers. `below(n)` is in [0, n) for a positive integer n < 2^31. Integers rather
 * than Math.random's doubles because a small integer crosses a call without being boxed: a draw per
 * pick then allocates nothing (see random.ts).
 */
export interface Random {
  below(n: number): number;
}

/** The stable identity of an endpoint. Called per pick: it must not allocate (return a stored field). */
export type KeyOf<E> = (e: E) => string;

export type BalancerKind = 'round-robin' | 'least-request' | 'p2c-ewma';
export const BALANCER_KINDS: readonly BalancerKind[] = ['round-robin', 'least-request', 'p2c-ewma'];

export interface Balancer<E> {
  readonly kind: BalancerKind;
  /**
   * Choose one of `eligible`, or null when it is empty. Allocates nothing per call. Pass a stable
   * array (rebuilt on change, not per request): round-robin keeps its cursor per array.
   */
  pick(eligible: readonly E[]): E | null;
  /** A request was sent to the endpoint with this key (call once per attempt, retries included). */
  onStart(key: string): void;
  /**
   * The attempt ended: `latencyMs` until the response head (or the failure), `ok` false for a
   * connect failure, reset, timeout or 5xx. Every onStart must be matched by one onFinish.
   */
  onFinish(key: string, latencyMs: number, ok: boolean): void;
  /**
   * Load begun with onStart ended with no latency to report (a tcp connection closing; its connect
   * time is reported on its own, with onStart/onFinish): in-flight count only. Matches one onStart,
   * as onFinish does.
   */
  onRelease(key: string): void;
  /**
   * The whole endpoint set changed (call on config pushes, not per request; include unhealthy and
   * ejected endpoints so their state is kept). State of keys no longer present is dropped.
   */
  setEndpoints(all: readonly E[]): void;
}

/** The fields of `shared/protocol.ts` Endpoint the lb units read when no accessor is given. */
export interface EndpointLike {
  readonly host: string;
  readonly healthy: boolean;
  readonly labels: Readonly<Record<string, string>>;
}

export const endpointKey = (e: EndpointLike): string => e.host;
export const endpointHealthy = (e: EndpointLike): boolean => e.healthy;
export const endpointLabels = (e: EndpointLike): Readonly<Record<string, string>> => e.labels;

/** Clock for production: monotonic, so an NTP step cannot freeze or fast-forward decay and windows. */
export const monotonicClock: Clock = { now: () => performance.now() };

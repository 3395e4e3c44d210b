// AccessPolicy compiled into a per-service evaluator, built when a snapshot is applied and asked
// once per connection (tcp) or request (http) by the inbound listener.
//
// Semantics:
// - Deny beats allow: any matching deny rule denies, whatever allow rules also match; otherwise a
//   matching allow rule allows; otherwise the mesh default (`Mesh.spec.defaultAccess`). The
//   reported ruleIndex is the first matching rule (in spec order) of the kind that decided.
// - `from: ["*"]` matches every source service. Sources are verified certificate identities.
// - `http.methods` match case-insensitively (`get` is GET): some frameworks upper-case the method,
//   so a case-sensitive deny on GET could be walked around with `get`.
// - `http.paths` are compared with the *normalized* request path (agent/policy/normalize-path.ts),
//   case-sensitively. An entry is an exact path, or a prefix ending in `*`: `/admin/*` matches
//   `/admin/`, `/admin/x/y` and also `/admin` itself (a deny on "everything under /admin" must not
//   leave the directory's own URL open); `/adm*` matches `/adm`, `/admin`, `/adm/x`; `/*` matches
//   every path. Policy paths are normalized the same way as requests (so `/%7Eu/*` and `/~u/*` are
//   one prefix); an entry that cannot be normalized (e.g. holds `%2F` or `?`) can never match a
//   request (such requests are refused before policy) and is reported in `warnings`.
// - Constraints a request cannot be checked against: a rule with `http` against a tcp connection
//   (method null), or a rule with `paths` against a request without a path (CONNECT, OPTIONS *).
//   An allow rule then does not match; a deny rule *does* match. This is Istio's rule for
//   HTTP-only fields on TCP workloads: fail closed. (http rules on a tcp service are a mistake the
//   server should refuse on apply; this covers one that gets through, or a protocol changed under
//   an existing policy.)
// - mode `audit`: the decision is computed as in enforce mode and reported (`audit: true`,
//   `wouldDeny`), but the request is allowed.
//
// Per-request cost: one Map lookup for the source, then a walk over only the rules that can apply
// to it (precomputed per named source, wildcard rules merged in order), each a Set lookup for the
// method and a Set lookup plus one binary search over sorted prefixes for the path. Decisions are
// precomputed frozen objects: deciding allocates nothing.
import type { AccessPolicySpec } from '../../shared/resources.js';
import { isPathError, normalizePath } from './normalize-path.js';

export type AccessReason = 'RBAC_ALLOW' | 'RBAC_DENY_RULE' | 'RBAC_DEFAULT_ALLOW' | 'RBAC_DEFAULT_DENY';

export interface AccessDecision {
  /** Whether the request may pass (always true in audit mode). */
  readonly allowed: boolean;
  /** What decided, as enforce mode would have it. */
  readonly reason: AccessReason;
  /** Index of the deciding rule in spec.rules; -1 for the mesh default. */
  readonly ruleIndex: number;
  /** The policy runs in audit mode. */
  readonly audit: boolean;
  /** Enforce mode would have denied (equals !allowed outside audit mode). */
  readonly wouldDeny: boolean;
}

type RuleSpec = AccessPolicySpec['rules'][number];

function decision(allowed: boolean, reason: AccessReason, ruleIndex: number, audit: boolean): AccessDecision {
  return Object.freeze({ allowed: allowed || audit, reason, ruleIndex, audit, wouldDeny: !allowed });
}

class CompiledRule {
  readonly deny: boolean;
  readonly http: boolean;
  readonly methods: ReadonlySet<string> | null;
  readonly exact: ReadonlySet<string> | null;
  /** Sorted, none a prefix of another: at most one can match a path, found by binary search. */
  readonly prefixes: readonly string[] | null;
  readonly decision: AccessDecision;

  constructor(rule: RuleSpec, index: number, audit: boolean, warnings: string[]) {
    this.deny = rule.action === 'deny';
    this.decision = this.deny ? decision(false, 'RBAC_DENY_RULE', index, audit) : decision(true, 'RBAC_ALLOW', index, audit);
    this.http = rule.http !== undefined;
    this.methods = rule.http?.methods ? new Set(rule.http.methods.map((m) => m.toUpperCase())) : null;
    if (!rule.http?.paths) {
      this.exact = null;
      this.prefixes = null;
      return;
    }
    const exact = new Set<string>();
    const prefixes: string[] = [];
    rule.http.paths.forEach((p, j) => {
      if (!compilePath(p, exact, prefixes)) {
        warnings.push(`spec.rules[${index}].http.paths[${j}]: "${p}" cannot match a normalized request path`);
      }
    });
    prefixes.sort();
    const kept: string[] = [];
    for (const p of prefixes) {
      const prev = kept[kept.length - 1];
      if (prev === undefined || !p.startsWith(prev)) kept.push(p);
    }
    this.exact = exact;
    this.prefixes = kept;
  }

  matches(method: string | null, path: string | null): boolean {
    if (!this.http) return true;
    if (method === null) return this.deny;
    const methods = this.methods;
    if (methods !== null && !methods.has(method) && !(hasLowerCase(method) && methods.has(method.toUpperCase()))) return false;
    const prefixes = this.prefixes;
    if (prefixes === null) return true;
    if (path === null) return this.deny;
    if ((this.exact as ReadonlySet<string>).has(path)) return true;
    // Greatest prefix ≤ path; since no prefix extends another, it is the only candidate.
    let lo = 0;
    let hi = prefixes.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((prefixes[mid] as string) <= path) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found !== -1 && path.startsWith(prefixes[found] as string);
  }
}

function hasLowerCase(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) return true;
  }
  return false;
}

/**
 * Add one policy path to the exact set or the prefix list, normalized as requests are. Returns
 * false when it cannot be normalized (it then matches nothing).
 */
function compilePath(p: string, exact: Set<string>, prefixes: string[]): boolean {
  if (!p.endsWith('*')) {
    const n = normalizePath(p);
    if (isPathError(n)) return false;
    exact.add(n);
    return true;
  }
  // Normalize the prefix with a sentinel segment character appended, so that its last, partial
  // segment is kept as typed (`/a/.*` must stay "segments starting with a dot", not become `/a/`)
  // while its complete segments get dot-segment removal and slash merging.
  const raw = p.slice(0, -1);
  const n = normalizePath(raw + 'x');
  if (isPathError(n)) return false;
  const prefix = n.slice(0, -1);
  prefixes.push(prefix);
  if (prefix.length > 1 && prefix.endsWith('/')) exact.add(prefix.slice(0, -1));
  return true;
}

class SourceRules {
  constructor(
    readonly deny: readonly CompiledRule[],
    readonly allow: readonly CompiledRule[],
  ) {}
}

export class AccessEvaluator {
  readonly mode: 'enforce' | 'audit';
  /** Policy paths that can never match, for the agent to log once when the policy is applied. */
  readonly warnings: readonly string[];
  readonly #bySource: ReadonlyMap<string, SourceRules>;
  readonly #anySource: SourceRules;
  readonly #default: AccessDecision;

  constructor(spec: AccessPolicySpec | null, defaultAccess: 'allow' | 'deny') {
    const audit = spec?.mode === 'audit';
    this.mode = audit ? 'audit' : 'enforce';
    const warnings: string[] = [];
    const rules = (spec?.rules ?? []).map((r, i) => new CompiledRule(r, i, audit, warnings));
    this.warnings = warnings;
    this.#default =
      defaultAccess === 'allow' ? decision(true, 'RBAC_DEFAULT_ALLOW', -1, audit) : decision(false, 'RBAC_DEFAULT_DENY', -1, audit);

    // Rule indices per named source and for `*`, each ascending; a named source's list is its own
    // merged with the wildcard one, so decide() walks one list in spec order.
    const wildcard: number[] = [];
    const named = new Map<string, number[]>();
    (spec?.rules ?? []).forEach((r, i) => {
      if (r.from.includes('*')) {
        wildcard.push(i);
        return;
      }
      for (const f of new Set(r.from)) {
        let list = named.get(f);
        if (!list) named.set(f, (list = []));
        list.push(i);
      }
    });
    const build = (indices: readonly number[]): SourceRules => {
      const deny: CompiledRule[] = [];
      const allow: CompiledRule[] = [];
      for (const i of indices) {
        const c = rules[i] as CompiledRule;
        (c.deny ? deny : allow).push(c);
      }
      return new SourceRules(deny, allow);
    };
    this.#anySource = build(wildcard);
    const bySource = new Map<string, SourceRules>();
    for (const [source, own] of named) bySource.set(source, build(mergeAscending(own, wildcard)));
    this.#bySource = bySource;
  }

  /**
   * Decide for one connection or request. `method` is null for a tcp connection; `path` is the
   * normalized path (null when the request has none, or for tcp).
   */
  decide(sourceService: string, method: string | null, path: string | null): AccessDecision {
    const rules = this.#bySource.get(sourceService) ?? this.#anySource;
    const deny = rules.deny;
    for (let i = 0; i < deny.length; i++) {
      const r = deny[i] as CompiledRule;
      if (r.matches(method, path)) return r.decision;
    }
    const allow = rules.allow;
    for (let i = 0; i < allow.length; i++) {
      const r = allow[i] as CompiledRule;
      if (r.matches(method, path)) return r.decision;
    }
    return this.#default;
  }
}

function mergeAscending(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (y === undefined || (x !== undefined && x < y)) {
      out.push(x as number);
      i++;
    } else {
      out.push(y);
      j++;
    }
  }
  return out;
}

/** Compile a service's AccessPolicy (null when it has none) against the mesh default. */
export function compileAccessPolicy(spec: AccessPolicySpec | null, defaultAccess: 'allow' | 'deny'): AccessEvaluator {
  return new AccessEvaluator(spec, defaultAccess);
}

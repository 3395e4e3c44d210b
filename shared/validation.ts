// Runtime validation with TypeBox: compile a schema once, check values against it, and turn
// failures into `{field, message}` violations a person can act on.
//
// Built on typebox/schema (Build, Errors), the layer typebox/compile's Validator wraps: the same
// checking code and the same errors, without the Value.* operations (Clean, Convert, Default,
// codecs…) that Validator pulls into the agent's bundle and we never call.
import type { TSchema, Static } from 'typebox';
import { Build, Errors } from 'typebox/schema';
import { HmError, validationError, type Violation } from './errors.js';

/** `/spec/rules/0/weight` → `spec.rules[0].weight` */
export function pointerToField(pointer: string, prefix = ''): string {
  let out = prefix;
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(part)) out += `[${part}]`;
    else out += out ? `.${part}` : part;
  }
  return out;
}

/** Friendlier words for the patterns people meet most; registered by the modules that own them. */
const PATTERN_MESSAGES = new Map<string, string>();
export function describePattern(pattern: string, message: string): void {
  PATTERN_MESSAGES.set(pattern, message);
}

interface RawError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message: string;
}

function toViolations(errors: Iterable<RawError>, prefix: string): Violation[] {
  const out: Violation[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    // TypeBox reports an unknown property twice (as `schema is false` on the property and as
    // `additionalProperties` on the parent); keep only the clearer one.
    if (e.keyword === 'boolean') continue;
    let field = pointerToField(e.instancePath, prefix);
    let message = e.message;
    if (e.keyword === 'additionalProperties') {
      const extra = (e.params['additionalProperties'] as string[] | undefined) ?? [];
      for (const name of extra) {
        const f = field ? `${field}.${name}` : name;
        const key = `${f}|unknown`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({ field: f, message: 'unknown field' });
      }
      continue;
    }
    if (e.keyword === 'required') {
      const missing = (e.params['requiredProperties'] as string[] | undefined) ?? [];
      for (const name of missing) {
        const f = field ? `${field}.${name}` : name;
        const key = `${f}|required`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({ field: f, message: 'is required' });
      }
      if (missing.length > 0) continue;
    }
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf') message = 'does not match any allowed form';
    if (e.keyword === 'pattern') message = PATTERN_MESSAGES.get(String(e.params['pattern'])) ?? message;
    const key = `${field}|${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ field, message });
  }
  // Most specific (deepest) problems first: "spec.port: must be >= 1" beats "spec: does not match".
  return out.sort((a, b) => depth(b.field) - depth(a.field));
}

function depth(field: string): number {
  return (field.match(/[.[]/g)?.length ?? 0) + (field ? 1 : 0);
}

export interface Validator<T> {
  readonly schema: TSchema;
  check(value: unknown): value is T;
  /** Violations for `value`, field names prefixed with `prefix`. Empty when valid. */
  violations(value: unknown, prefix?: string): Violation[];
  /** Returns `value` typed, or throws HM_ERR_VALIDATION naming the first failing field. */
  parse(value: unknown, what?: string): T;
}

/**
 * A validator for `schema`, compiled on its first use rather than here: the modules in shared/
 * declare every schema of the protocol and the resources, and a process checks only some of them
 * (the agent never checks the resources or its own messages). Each compiled one holds its
 * generated source and function; the agent compiled 20 at startup, for 7 it uses.
 */
export function compile<S extends TSchema>(schema: S): Validator<Static<S>> {
  let compiled: ((value: unknown) => boolean) | null = null;
  const check = (value: unknown): value is Static<S> => {
    if (compiled === null) {
      const result = Build(schema).Evaluate();
      compiled = (v) => result.Check(v);
    }
    return compiled(value);
  };
  const errors = (value: unknown): RawError[] => Errors(schema, value)[1] as unknown as RawError[];
  return {
    schema,
    check,
    violations(value: unknown, prefix = ''): Violation[] {
      if (check(value)) return [];
      return toViolations(errors(value), prefix);
    },
    parse(value: unknown, what = 'body'): Static<S> {
      if (check(value)) return value;
      throw validationError(toViolations(errors(value), ''), what);
    },
  };
}

export { HmError };

// Request validation with the shared TypeBox schemas, so API errors name the field the same way the
// CLI and the registry do. Schemas marked `x-validated-by: registry` are for the OpenAPI document
// only: the registry validates those bodies itself, in the same transaction as the write.
import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import { validationError } from '../../shared/errors.js';
import { compile } from '../../shared/validation.js';
import { Value } from 'typebox/value';

export const DOCS_ONLY = { 'x-validated-by': 'registry' } as const;

export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  if ((schema as Record<string, unknown>)['x-validated-by'] === 'registry') return (value: unknown) => ({ value });
  const v = compile(schema);
  const what = httpPart === 'querystring' ? 'query' : httpPart === 'params' ? 'path' : (httpPart ?? 'body');
  // Query strings and path params arrive as text; convert `?limit=10` to a number before checking.
  const convert = httpPart === 'querystring' || httpPart === 'params';
  return (raw: unknown) => {
    const value = convert ? Value.Convert(schema, raw) : raw;
    const violations = v.violations(value);
    return violations.length === 0 ? { value } : { error: validationError(violations, what) };
  };
};

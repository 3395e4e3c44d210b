// Every API failure leaves as `{ error: { code, message, violations? } }` with a stable HM_ERR_* code,
// including the ones fastify raises itself (body too large, bad JSON, wrong content type).
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCatalogue, HmError, isHmError, type ErrorCode } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'HM_ERR_PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'HM_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_JSON_BODY: 'HM_ERR_BAD_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'HM_ERR_BAD_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'HM_ERR_BAD_REQUEST',
  FST_ERR_VALIDATION: 'HM_ERR_VALIDATION',
};

const MESSAGES: Partial<Record<ErrorCode, string>> = {
  HM_ERR_PAYLOAD_TOO_LARGE: 'request body is over the 1 MiB limit; split it into several requests',
  HM_ERR_UNSUPPORTED_MEDIA_TYPE: 'request body must be sent with content-type: application/json',
};

export function toHmError(err: unknown): HmError {
  if (isHmError(err)) return err;
  const fe = err as FastifyError;
  const mapped = fe && typeof fe.code === 'string' ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) {
    const message = MESSAGES[mapped] ?? (mapped === 'HM_ERR_BAD_JSON' ? `body is not valid JSON: ${fe.message}` : fe.message);
    return new HmError(mapped, message, { cause: err });
  }
  if (fe && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new HmError('HM_ERR_BAD_REQUEST', fe.message, { cause: err });
  }
  return new HmError('HM_ERR_INTERNAL', 'internal error; see the server log', { cause: err });
}

export function makeErrorHandler(log: Logger) {
  return function errorHandler(err: unknown, req: FastifyRequest, reply: FastifyReply): void {
    const e = toHmError(err);
    if (e.code === 'HM_ERR_INTERNAL') log.error({ err, url: req.url, method: req.method }, 'request failed');
    void reply.code(ErrorCatalogue[e.code].status).send(e.toJSON());
  };
}

// One catalogue of stable error codes. Callers branch on `code`, never on the message.
// Codes are never reused or renamed once shipped; the README lists them.

export interface Violation {
  /** JSON-pointer-ish path of the offending field, e.g. `spec.rules[0].destinations`. */
  field: string;
  message: string;
}

export const ErrorCatalogue = {
  HM_ERR_VALIDATION: { status: 400, summary: 'the request body or a field in it is invalid' },
  HM_ERR_BAD_JSON: { status: 400, summary: 'the body is not valid JSON' },
  HM_ERR_BAD_REQUEST: { status: 400, summary: 'the request is malformed' },
  HM_ERR_UNKNOWN_KIND: { status: 404, summary: 'no such resource kind' },
  HM_ERR_UNAUTHENTICATED: { status: 401, summary: 'missing or wrong bearer token' },
  HM_ERR_FORBIDDEN: { status: 403, summary: 'the token may not do this' },
  HM_ERR_NOT_FOUND: { status: 404, summary: 'no such object' },
  HM_ERR_CONFLICT: { status: 409, summary: 'the object changed since the version you named' },
  HM_ERR_ALREADY_EXISTS: { status: 409, summary: 'an object with that name already exists' },
  HM_ERR_REFERENCE: { status: 400, summary: 'a field refers to something that does not exist' },
  HM_ERR_IN_USE: { status: 409, summary: 'other resources still refer to this one' },
  HM_ERR_PAYLOAD_TOO_LARGE: { status: 413, summary: 'the body is over the size limit' },
  HM_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, summary: 'the body must be application/json' },
  HM_ERR_METHOD_NOT_ALLOWED: { status: 405, summary: 'method not allowed here' },
  HM_ERR_ROUTE_NOT_FOUND: { status: 404, summary: 'no such API path' },
  HM_ERR_TOKEN_INVALID: { status: 401, summary: 'the join token is unknown, expired, revoked or used up' },
  HM_ERR_TOKEN_SCOPE: { status: 403, summary: 'the join token does not allow this service' },
  HM_ERR_CSR_INVALID: { status: 400, summary: 'the certificate signing request is unacceptable' },
  HM_ERR_IDENTITY: { status: 400, summary: 'the requested identity is malformed or not allowed' },
  HM_ERR_HOST_EXISTS: { status: 409, summary: 'a host of that name already joined' },
  HM_ERR_BAD_MESSAGE: { status: 400, summary: 'a protocol message is malformed' },
  HM_ERR_UNKNOWN_MESSAGE: { status: 400, summary: 'a protocol message has an unknown type' },
  HM_ERR_NOT_REGISTERED: { status: 403, summary: 'the host does not register that service' },
  HM_ERR_PIN_MISMATCH: { status: 495, summary: 'the server does not chain to the pinned CA fingerprint' },
  HM_ERR_AGENT_NOT_BUILT: { status: 404, summary: 'the server has no agent build to serve (npm run build:agent)' },
  HM_ERR_CONFIG: { status: 500, summary: 'the configuration is invalid' },
  HM_ERR_STARTUP: { status: 500, summary: 'the process could not start' },
  HM_ERR_UNAVAILABLE: { status: 503, summary: 'the server is unreachable' },
  HM_ERR_INTERNAL: { status: 500, summary: 'internal error' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof ErrorCatalogue;

export class HmError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly violations: Violation[] | undefined;

  constructor(code: ErrorCode, message: string, opts: { violations?: Violation[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HmError';
    this.code = code;
    this.status = ErrorCatalogue[code].status;
    this.violations = opts.violations;
  }

  toJSON(): ErrorBody {
    const error: ErrorBody['error'] = { code: this.code, message: this.message };
    if (this.violations && this.violations.length > 0) error.violations = this.violations;
    return { error };
  }
}

/** The JSON shape of every API error. */
export interface ErrorBody {
  error: { code: string; message: string; violations?: Violation[] };
}

export function isHmError(e: unknown): e is HmError {
  return e instanceof HmError;
}

/** Build a validation error whose message names the first failing field, so a person can act on one line. */
export function validationError(violations: Violation[], what = 'body'): HmError {
  const first = violations[0];
  const msg = first
    ? `invalid ${what}: ${first.field || '(root)'}: ${first.message}${violations.length > 1 ? ` (and ${violations.length - 1} more)` : ''}`
    : `invalid ${what}`;
  return new HmError('HM_ERR_VALIDATION', msg, { violations });
}

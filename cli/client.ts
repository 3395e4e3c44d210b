// The HTTPS client for the admin API. The server is trusted through the mesh root alone: the root
// PEM is the only CA handed to TLS, and verification is never turned off.
import { Agent, request } from 'undici';
import type { ErrorBody, Violation } from '../shared/errors.js';
import type { Connection } from './connection.js';
import { ApiError, CliError } from './errors.js';
import { describeTransportError } from './transport-errors.js';

export const REQUEST_TIMEOUT_MS = 10_000;

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
export type Query = Record<string, string | number | undefined>;

export class ApiClient {
  readonly url: string;
  private readonly conn: Connection;
  private readonly timeoutMs: number;
  private readonly agent: Agent;

  constructor(conn: Connection, timeoutMs = REQUEST_TIMEOUT_MS) {
    this.conn = conn;
    this.url = conn.url;
    this.timeoutMs = timeoutMs;
    this.agent = new Agent({
      connect: { ca: conn.ca, timeout: timeoutMs },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.send<T>('GET', path, undefined, query);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.send<T>('POST', path, body);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.send<T>('PUT', path, body);
  }

  delete<T>(path: string): Promise<T> {
    return this.send<T>('DELETE', path);
  }

  /** Drop pooled keep-alive sockets, which would otherwise hold the process open for seconds. */
  async close(): Promise<void> {
    await this.agent.destroy();
  }

  private async send<T>(method: Method, path: string, body?: unknown, query?: Query): Promise<T> {
    const target = new URL(path, this.url);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) target.searchParams.set(k, String(v));
    const headers: Record<string, string> = { authorization: `Bearer ${this.conn.token}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';

    let status: number;
    let text: string;
    try {
      const res = await request(target, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        dispatcher: this.agent,
        // One ceiling for the whole exchange, DNS included; the agent's timeouts cover each phase.
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (e) {
      throw describeTransportError(e, { url: this.url, caSource: this.conn.sources.ca, timeoutMs: this.timeoutMs });
    }

    if (status >= 400) throw this.apiError(status, text);
    if (text.trim() === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(`the server at ${this.url} answered ${method} ${target.pathname} with something that is not JSON`);
    }
  }

  private apiError(status: number, text: string): Error {
    const err = parseErrorBody(status, text);
    if (err.status === 401) {
      return new ApiError(err.status, err.code, `${err.message} (token from ${this.conn.sources.token})`);
    }
    return err;
  }
}

/** The API's error body, or a stand-in when something other than the API (a proxy?) answered. */
export function parseErrorBody(status: number, text: string): ApiError {
  try {
    const body = JSON.parse(text) as Partial<ErrorBody> | null;
    const e = body?.error;
    if (e && typeof e.code === 'string' && typeof e.message === 'string') {
      const violations: Violation[] = Array.isArray(e.violations) ? e.violations : [];
      return new ApiError(status, e.code, e.message, violations);
    }
  } catch {
    // not JSON: fall through
  }
  const snippet = text.trim().split('\n', 1)[0]?.slice(0, 200) ?? '';
  return new ApiError(status, 'HTTP_ERROR', `the server answered HTTP ${status}${snippet ? `: ${snippet}` : ''}`);
}

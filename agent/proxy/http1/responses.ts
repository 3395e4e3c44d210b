// The proxy's own answers: a status, a stable reason code in `x-hostmesh-error`, and a one-line
// body saying why (what the node:http version sent, so callers see no difference).
import { STATUS_CODES } from 'node:http';

export const CONTINUE_100 = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');

/**
 * The whole response as a string (write it as utf8). `connection` is written when the proxy will
 * close the connection ('close') or keeps an HTTP/1.0 client's connection open ('keep-alive').
 */
export function errorResponse(
  status: number,
  reason: string,
  message: string,
  connection: 'close' | 'keep-alive' | null,
  extraName: string | null = null,
  extraValue = '',
): string {
  const body = message + '\n';
  let s = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-hostmesh-error: ${reason}\r\n`;
  if (extraName !== null) s += `${extraName}: ${extraValue}\r\n`;
  if (connection !== null) s += `connection: ${connection}\r\n`;
  return s + '\r\n' + body;
}

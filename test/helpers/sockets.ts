// Plain loopback sockets for unit tests of code that sits between two connections.
import { once } from 'node:events';
import net from 'node:net';
import type { TestContext } from 'node:test';

/** Two connected loopback sockets (half-open allowed), destroyed when the test ends. */
export async function socketPair(t: TestContext): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const a = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const [b] = (await accepted) as [net.Socket];
  await once(a, 'connect');
  server.close();
  t.after(() => {
    a.destroy();
    b.destroy();
  });
  return [a, b];
}

// Per-test resources: servers and clients started through a scope are closed when the
// test ends (clients first, so they do not keep reconnecting to a dead server).
import { startServer } from './server.mjs';
import { makeClient } from './clients.mjs';

export function scope(t) {
  const clients = [];
  const servers = [];
  t.after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await Promise.allSettled(servers.map((s) => s.kill9()));
  });
  return {
    async server(opts) {
      const s = await startServer(opts);
      servers.push(s);
      return s;
    },
    async client(stack, url, opts) {
      const c = await makeClient(stack, url, opts);
      clients.push(c);
      return c;
    },
  };
}

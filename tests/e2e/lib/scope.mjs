// Per-test resources: servers and clients started through a scope are closed when the
// test ends (clients first, so they do not keep reconnecting to a dead server). A
// server that printed a sanitizer report fails the test then (lib/server.mjs).
import { startServer } from './server.mjs';
import { makeClient } from './clients.mjs';

export function scope(t) {
  const clients = [];
  const servers = [];
  t.after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    // A server's sanitizer report fails the test here if nothing else has (stop and
    // kill9 throw it once). A sanitized server is stopped with SIGTERM, so that
    // LeakSanitizer looks at it as it exits.
    const killed = await Promise.allSettled(servers.map((s) => (s.sanitized ? s.stop() : s.kill9())));
    const failed = killed.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
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

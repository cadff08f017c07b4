// Issue 14, agents: `groundmist-sync mcp` driven by the official MCP TypeScript SDK
// client (@modelcontextprotocol/sdk, stdio transport), against a real server and a
// real automerge-repo 2.5.6 app editing the same document. The MCP server's tools are
// the JSON API's routes, called with a token minted by `groundmist-sync token`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scope } from './lib/scope.mjs';
import { SERVER_KIND, BIN, GROUP, serverEnv } from './lib/server.mjs';
import { importFrom, INTEROP_DIR, tempDir, waitFor, withTimeout } from './lib/util.mjs';

const skip = SERVER_KIND !== 'cpp' ? 'the JS reference server has no JSON API' : false;

async function mcpClient(t, server) {
  const { Client } = await importFrom(INTEROP_DIR, '@modelcontextprotocol/sdk', 'dist/esm/client/index.js');
  const { StdioClientTransport } = await importFrom(INTEROP_DIR, '@modelcontextprotocol/sdk', 'dist/esm/client/stdio.js');
  const transport = new StdioClientTransport({
    command: BIN,
    args: ['mcp', '--url', `http://127.0.0.1:${server.port}`],
    env: { ...serverEnv(), GROUNDMIST_SYNC_TOKEN: server.token(GROUP) },
    stderr: 'pipe',
  });
  const client = new Client({ name: 'groundmist-e2e', version: '1.0.0' });
  await withTimeout(client.connect(transport), 10000, 'the MCP handshake');
  t.after(() => client.close());
  return client;
}

// The JSON a tool answered (it is the API's answer, as text).
function answer(result, what) {
  assert.equal(result.isError, false, `${what}: ${JSON.stringify(result.content)}`);
  return JSON.parse(result.content[0].text);
}

test('mcp: the SDK client lists the tools, reads a document, patches it, and the app sees the patch', { skip, timeout: 60000 }, async (t) => {
  const env = scope(t);
  const server = await env.server({ data: tempDir('mcp') });  // else a folder named 'undefined' here
  const app = await env.client('2.5.6', server.url());
  await app.waitPeer();
  const h = app.create({ title: 'Groceries', items: ['milk'] });
  await app.waitServerHas(h);
  const id = h.url.slice('automerge:'.length);

  const mcp = await mcpClient(t, server);
  assert.equal(mcp.getServerVersion()?.name, 'groundmist-sync');
  const { tools } = await mcp.listTools();
  assert.deepEqual(tools.map((x) => x.name).sort(),
    ['create_document', 'list_changes', 'list_documents', 'list_groups', 'patch_document', 'read_document']);
  for (const x of tools) assert.equal(x.inputSchema.type, 'object', x.name);

  const groups = answer(await mcp.callTool({ name: 'list_groups', arguments: {} }), 'list_groups');
  assert.ok(groups.groups.some((g) => g.group === GROUP), JSON.stringify(groups));
  const listed = answer(await mcp.callTool({ name: 'list_documents', arguments: { group: GROUP } }), 'list_documents');
  assert.ok(listed.documents.some((d) => d.id === id), JSON.stringify(listed));
  const read = answer(await mcp.callTool({ name: 'read_document', arguments: { id } }), 'read_document');
  assert.deepEqual(read, { title: 'Groceries', items: ['milk'] });

  answer(await mcp.callTool({
    name: 'patch_document',
    arguments: { id, patch: [{ op: 'add', path: '/items/-', value: 'eggs' }, { op: 'replace', path: '/title', value: 'Groceries!' }] },
  }), 'patch_document');
  // toJS lists a map's keys sorted, so the expected text lists them so too.
  await waitFor(() => JSON.stringify(app.json(h)) === JSON.stringify({ items: ['milk', 'eggs'], title: 'Groceries!' }),
    5000, 'the app to see the agent\'s patch');
  const changes = answer(await mcp.callTool({ name: 'list_changes', arguments: { id } }), 'list_changes');
  assert.ok(changes.changes.length >= 2, JSON.stringify(changes));

  const made = answer(await mcp.callTool({ name: 'create_document', arguments: { group: GROUP, content: { note: 'from an agent' } } }),
    'create_document');
  assert.match(made.url, /^automerge:/);
  const found = await app.find(made.url, 10000);
  assert.equal(found.state, 'ready');
  assert.deepEqual(app.json(found.handle), { note: 'from an agent' });

  // Failures are tool results the agent can read, not protocol errors.
  const missing = await mcp.callTool({ name: 'read_document', arguments: { id: '2JvEZqcUdhg7statCjEBnbhyqbTt' } });
  assert.equal(missing.isError, true);
  assert.match(missing.content[0].text, /404/);
  const bad = await mcp.callTool({ name: 'read_document', arguments: {} });
  assert.equal(bad.isError, true);
  await assert.rejects(mcp.callTool({ name: 'no_such_tool', arguments: {} }), /no tool/);
});

// The TypeScript MCP SDK's client, for the gateway's tests: connects to an MCP endpoint
// over Streamable HTTP with a bearer token, lists every tool (following the cursors),
// makes the calls it is given, and prints one JSON line of what it saw.
//
//   PLUGMESH_TOKEN=... node sdk_client.mjs <url> '[{"name": "up__echo", "arguments": {...}}]'
//
// The token comes from the environment, so that it is on no command line. Each call's
// outcome is {"result": ...} or {"error": {"code": ..., "message": ...}}.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, plan = "[]"] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${process.env.PLUGMESH_TOKEN}` } },
});
const client = new Client({ name: "plugmesh-node-test", version: "1.0.0" });
await client.connect(transport);

const tools = [];
let cursor;
do {
  const page = await client.listTools(cursor ? { cursor } : undefined);
  tools.push(...page.tools.map((tool) => tool.name));
  cursor = page.nextCursor;
} while (cursor);

const calls = [];
for (const { name, arguments: args } of JSON.parse(plan)) {
  try {
    calls.push({ result: await client.callTool({ name, arguments: args }) });
  } catch (error) {
    calls.push({ error: { code: error.code ?? null, message: String(error.message) } });
  }
}

console.log(
  JSON.stringify({
    protocolVersion: transport.protocolVersion ?? null,
    server: client.getServerVersion(),
    tools,
    calls,
  }),
);
await client.close();

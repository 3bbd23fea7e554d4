/**
 * The Node client: walks through the mesh over gRPC (the gateway's ingress port), then
 * over HTTP/JSON (its transcoding port), and prints what it saw as one JSON object.
 *
 * Environment: PLUGMESH_GATEWAY_GRPC and PLUGMESH_GATEWAY_HTTP ("host:port"),
 * PLUGMESH_TOKEN (an admin machine token, never printed), PLUGMESH_RUN_NAME (optional,
 * makes created names unique).
 */
import { grpcApi } from "./grpc.js";
import { httpApi } from "./http.js";
import { walkthrough } from "./walkthrough.js";

function setting(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

async function main(): Promise<void> {
  const grpcAddress = setting("PLUGMESH_GATEWAY_GRPC");
  const httpAddress = setting("PLUGMESH_GATEWAY_HTTP");
  const token = setting("PLUGMESH_TOKEN");
  const name = process.env.PLUGMESH_RUN_NAME || Date.now().toString(36);
  const grpc = await walkthrough((bearer) => grpcApi(grpcAddress, bearer), token, name);
  const http = await walkthrough((bearer) => httpApi(httpAddress, bearer), token, name);
  process.stdout.write(`${JSON.stringify({ grpc, http }, null, 2)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`plugmesh node client: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});

/** The mesh over native gRPC through the gateway's ingress port, with connect-node. */
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuditService } from "../../../.build/stubs/node/plugmesh/audit/v1/audit_pb.js";
import { MachineUserService } from "../../../.build/stubs/node/plugmesh/machineusers/v1/machineusers_pb.js";
import { UserService } from "../../../.build/stubs/node/plugmesh/users/v1/users_pb.js";
import { required, type MeshApi } from "./api.js";

const DEADLINE_MILLIS = 10_000;

/** Sends `authorization: Bearer <token>` with every call. */
function bearer(token: string): Interceptor {
  return (next) => async (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return await next(request);
  };
}

/** The mesh's plugins through the ingress at `address` ("host:port"), plaintext HTTP/2. */
export function grpcApi(address: string, token: string): MeshApi {
  const transport = createGrpcTransport({
    baseUrl: `http://${address}`,
    interceptors: token ? [bearer(token)] : [],
    defaultTimeoutMs: DEADLINE_MILLIS,
  });
  const users = createClient(UserService, transport);
  const machineUsers = createClient(MachineUserService, transport);
  const audit = createClient(AuditService, transport);
  return {
    transport: "grpc",
    createUser: async (user) => required((await users.createUser({ user })).user, "user"),
    updateUserPermissions: async (userId, permissions) =>
      required((await users.updateUserPermissions({ userId, permissions })).user, "user"),
    getUser: async (userId) => required((await users.getUser({ userId })).user, "user"),
    listUsers: async () => (await users.listUsers({})).users,
    checkPermission: (userId, server, tool) => users.checkPermission({ userId, server, tool }),
    createMachineUser: (machineUser) => machineUsers.createMachineUser({ machineUser }),
    listMachineUsers: async () => (await machineUsers.listMachineUsers({})).machineUsers,
    listAuditEntries: async (resource) => (await audit.listAuditEntries({ resource })).entries,
  };
}

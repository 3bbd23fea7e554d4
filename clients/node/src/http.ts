/**
 * The mesh over HTTP/JSON through the gateway's transcoding port, with fetch. Requests
 * are written and responses read with the generated schemas, so a response that is not
 * the proto3 JSON form of its message fails here.
 */
import {
  create,
  fromJson,
  toJson,
  type DescMessage,
  type JsonValue,
  type MessageShape,
} from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ListAuditEntriesResponseSchema } from "../../../.build/stubs/node/plugmesh/audit/v1/audit_pb.js";
import {
  CreateMachineUserResponseSchema,
  ListMachineUsersResponseSchema,
  MachineUserSchema,
} from "../../../.build/stubs/node/plugmesh/machineusers/v1/machineusers_pb.js";
import {
  CheckPermissionResponseSchema,
  CreateUserResponseSchema,
  GetUserResponseSchema,
  ListUsersResponseSchema,
  PermissionsSchema,
  UpdateUserPermissionsResponseSchema,
  UserSchema,
} from "../../../.build/stubs/node/plugmesh/users/v1/users_pb.js";
import { required, type MeshApi } from "./api.js";

const DEADLINE_MILLIS = 10_000;

/** A refused HTTP call: the google.rpc.Status code of its body, and the HTTP status. */
export class HttpError extends ConnectError {
  constructor(
    message: string,
    code: Code,
    readonly status: number,
  ) {
    super(message, code);
  }
}

/** The mesh's plugins through the gateway's HTTP port at `address` ("host:port"). */
export function httpApi(address: string, token: string): MeshApi {
  async function call<Desc extends DescMessage>(
    method: string,
    path: string,
    schema: Desc,
    body?: JsonValue,
  ): Promise<MessageShape<Desc>> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (token) {
      headers.authorization = `Bearer ${token}`;
    }
    const init: RequestInit = { method, headers, signal: AbortSignal.timeout(DEADLINE_MILLIS) };
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(`http://${address}${path}`, init);
    const json = (await response.json()) as JsonValue;
    if (!response.ok) {
      throw statusError(response.status, json);
    }
    return fromJson(schema, json);
  }
  const user = (userId: string) => `/v1/users/${encodeURIComponent(userId)}`;

  return {
    transport: "http",
    createUser: async (init) =>
      required(
        (await call("POST", "/v1/users", CreateUserResponseSchema, toJson(UserSchema, create(UserSchema, init))))
          .user,
        "user",
      ),
    updateUserPermissions: async (userId, permissions) =>
      required(
        (
          await call("PATCH", `${user(userId)}/permissions`, UpdateUserPermissionsResponseSchema, {
            permissions: toJson(PermissionsSchema, create(PermissionsSchema, permissions)),
          })
        ).user,
        "user",
      ),
    getUser: async (userId) => required((await call("GET", user(userId), GetUserResponseSchema)).user, "user"),
    listUsers: async () => (await call("GET", "/v1/users", ListUsersResponseSchema)).users,
    checkPermission: (userId, server, tool) =>
      call("POST", `${user(userId)}:checkPermission`, CheckPermissionResponseSchema, { server, tool }),
    createMachineUser: (init) =>
      call(
        "POST",
        "/v1/machine-users",
        CreateMachineUserResponseSchema,
        toJson(MachineUserSchema, create(MachineUserSchema, init)),
      ),
    listMachineUsers: async () =>
      (await call("GET", "/v1/machine-users", ListMachineUsersResponseSchema)).machineUsers,
    listAuditEntries: async (resource) =>
      (
        await call(
          "GET",
          `/v1/audit/entries?${new URLSearchParams({ resource })}`,
          ListAuditEntriesResponseSchema,
        )
      ).entries,
  };
}

/** The error a non-2xx response stands for; its body is a google.rpc.Status. */
function statusError(status: number, body: JsonValue): HttpError {
  const fields = typeof body === "object" && body !== null && !Array.isArray(body) ? body : {};
  const code = typeof fields.code === "number" ? (fields.code as Code) : Code.Unknown;
  const message = typeof fields.message === "string" ? fields.message : `HTTP ${status}`;
  return new HttpError(message, code, status);
}

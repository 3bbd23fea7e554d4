/**
 * What the walkthrough needs from the mesh, typed by the generated stubs. Two
 * implementations: `grpc.ts` (native gRPC through the gateway's ingress port) and
 * `http.ts` (HTTP/JSON through the gateway's transcoding port).
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AuditEntry } from "../../../.build/stubs/node/plugmesh/audit/v1/audit_pb.js";
import type {
  CreateMachineUserResponse,
  MachineUser,
  MachineUserSchema,
} from "../../../.build/stubs/node/plugmesh/machineusers/v1/machineusers_pb.js";
import type {
  CheckPermissionResponse,
  PermissionsSchema,
  User,
  UserSchema,
} from "../../../.build/stubs/node/plugmesh/users/v1/users_pb.js";

export type UserInit = MessageInitShape<typeof UserSchema>;
export type PermissionsInit = MessageInitShape<typeof PermissionsSchema>;
export type MachineUserInit = MessageInitShape<typeof MachineUserSchema>;

/** The calls of the users, machine-users and audit plugins the walkthrough makes. */
export interface MeshApi {
  /** Which way the calls travel, for the report: "grpc" or "http". */
  readonly transport: string;
  createUser(user: UserInit): Promise<User>;
  updateUserPermissions(userId: string, permissions: PermissionsInit): Promise<User>;
  getUser(userId: string): Promise<User>;
  listUsers(): Promise<User[]>;
  checkPermission(userId: string, server: string, tool: string): Promise<CheckPermissionResponse>;
  createMachineUser(machineUser: MachineUserInit): Promise<CreateMachineUserResponse>;
  listMachineUsers(): Promise<MachineUser[]>;
  /** The newest entries about `resource`, for example "users/ada". */
  listAuditEntries(resource: string): Promise<AuditEntry[]>;
}

/** Opens the API with a bearer token, or without one when `token` is empty. */
export type OpenApi = (token: string) => MeshApi;

/** `value`, or an error naming the response field that was missing. */
export function required<T>(value: T | undefined, field: string): T {
  if (value === undefined) {
    throw new Error(`the response has no ${field}`);
  }
  return value;
}

/**
 * One walk through users, machine users and audit, the same over either transport: an
 * admin creates a user and changes its permissions, checks them, creates a machine user
 * whose new token then works with a user's rights, and reads the audit entries those
 * actions left. A call without a token must be refused. Tokens never enter the report.
 */
import { toJson } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { AuditEntrySchema, type AuditEntry } from "../../../.build/stubs/node/plugmesh/audit/v1/audit_pb.js";
import { MachineUserSchema } from "../../../.build/stubs/node/plugmesh/machineusers/v1/machineusers_pb.js";
import {
  CheckPermissionResponseSchema,
  Effect,
  Role,
  UserSchema,
} from "../../../.build/stubs/node/plugmesh/users/v1/users_pb.js";
import type { MeshApi, OpenApi } from "./api.js";
import { HttpError } from "./http.js";

const AUDIT_WAIT_MILLIS = 15_000;
const POLL_MILLIS = 200;
const CHECKS: [string, string][] = [
  ["github", "create_issue"],
  ["github", "delete_repo"],
  ["jira", "create_issue"],
];

/** Walks through the mesh with `open(token)`; `name` makes the created names unique. */
export async function walkthrough(open: OpenApi, token: string, name: string) {
  const api = open(token);
  const userId = `${api.transport}-${name}`;
  const created = await api.createUser({
    userId,
    email: `${userId}@example.com`,
    displayName: `Node client over ${api.transport}`,
    permissions: { rules: [{ effect: Effect.ALLOW, pattern: "github/*" }] },
  });
  await api.updateUserPermissions(userId, {
    rules: [
      { effect: Effect.ALLOW, pattern: "github/*" },
      { effect: Effect.DENY, pattern: "github/delete_*", description: "no deletes" },
    ],
  });
  const checks = [];
  for (const [server, tool] of CHECKS) {
    const decision = await api.checkPermission(userId, server, tool);
    checks.push({ server, tool, allowed: decision.allowed, ...toJson(CheckPermissionResponseSchema, decision) });
  }
  const user = await api.getUser(userId);
  const listedUser = (await api.listUsers()).some((each) => each.userId === userId);

  const { machineUser, token: botToken } = await api.createMachineUser({
    name: `${userId}-bot`,
    description: "made by the Node client",
    role: Role.USER,
  });
  if (machineUser === undefined) {
    throw new Error("CreateMachineUser returned no machine user");
  }
  const info = machineUser.tokenInfo;
  const tokenMatchesTokenInfo =
    info !== undefined && botToken.startsWith(info.prefix) && botToken.endsWith(info.lastFour);
  const botResource = `machine-users/${machineUser.machineUserId}`;
  const bot = open(botToken);
  const botEntries = await audited(bot, botResource, ["machine_user.created"]);
  const botListUsers = await refusal(() => bot.listUsers());
  const listedMachineUser = (await api.listMachineUsers()).some(
    (each) => each.machineUserId === machineUser.machineUserId,
  );

  const userEntries = await audited(api, `users/${userId}`, ["user.created", "user.permissions.updated"]);
  const machineUserEntries = await audited(api, botResource, ["machine_user.created"]);
  const withoutToken = await refusal(() => open("").listUsers());

  return {
    transport: api.transport,
    createdRevision: created.revision.toString(),
    user: toJson(UserSchema, user),
    listedUser,
    checks,
    machineUser: toJson(MachineUserSchema, machineUser),
    tokenMatchesTokenInfo,
    listedMachineUser,
    bot: { ownAuditActions: botEntries.map((entry) => entry.action), listUsers: botListUsers },
    audit: { user: userEntries.map(summary), machineUser: machineUserEntries.map(summary) },
    withoutToken,
  };
}

/** The entries about `resource` once every action in `actions` is among them. */
async function audited(api: MeshApi, resource: string, actions: string[]): Promise<AuditEntry[]> {
  const deadline = Date.now() + AUDIT_WAIT_MILLIS;
  for (;;) {
    const entries = await api.listAuditEntries(resource);
    const seen = new Set(entries.map((entry) => entry.action));
    if (actions.every((action) => seen.has(action))) {
      return entries;
    }
    if (Date.now() > deadline) {
      throw new Error(`no audit entries ${actions.join(", ")} for ${resource} after ${AUDIT_WAIT_MILLIS} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MILLIS));
  }
}

function summary(entry: AuditEntry) {
  const { action, resource, actor, outcome, sequence } = toJson(AuditEntrySchema, entry);
  return { action, resource, actor, outcome, sequence };
}

/** How `call` was refused: its gRPC code and, over HTTP, the status. Fails if it was not. */
async function refusal(call: () => Promise<unknown>): Promise<{ code: number; httpStatus?: number }> {
  try {
    await call();
  } catch (error) {
    if (error instanceof HttpError) {
      return { code: error.code, httpStatus: error.status };
    }
    if (error instanceof ConnectError) {
      return { code: error.code };
    }
    throw error;
  }
  throw new Error("the call was expected to be refused, and it succeeded");
}

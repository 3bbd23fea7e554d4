// "What may this caller do?": every tool of every upstream server, each decided by the
// plugin that owns the caller's permissions (the users plugin's CheckPermission for a
// person, the machine-users plugin's CheckMachineUserPermission for a machine user, the
// gateway's own decision for the signed-in caller); and any server/tool explained.
import { badge, field, h, replace, table } from "./dom.js";
import { api } from "./session.js";

const REASONS = {
  DECISION_REASON_RULE: "a rule",
  DECISION_REASON_ADMIN: "the admin flag",
  DECISION_REASON_DEFAULT_DENY: "no rule matched: denied by default",
};

/** A person, asked about through the users plugin. */
export function personAsked(user) {
  return {
    label: user.email,
    check: (server, tool, signal) => api(`/v1/users/${encodeURIComponent(user.userId)}:checkPermission`,
      { method: "POST", body: { server, tool }, signal }),
  };
}

/** A machine user, asked about through the machine-users plugin. */
export function machineAsked(machine) {
  return {
    label: machine.name,
    check: (server, tool, signal) => api(`/v1/machine-users/${encodeURIComponent(machine.machineUserId)}:checkPermission`,
      { method: "POST", body: { server, tool }, signal }),
  };
}

/** The signed-in caller, asked about through the gateway: what tools/call will decide. */
export const selfAsked = {
  label: "you",
  check: (server, tool, signal) => api(`/console/api/decision?${new URLSearchParams({ tool: `${server}/${tool}` })}`, { signal }),
};

/** A sentence saying what decided. */
export function explanation(decision) {
  const verdict = decision.allowed ? "allowed" : "denied";
  if (decision.reason === "DECISION_REASON_RULE" && decision.matchedRule) {
    const { index = 0, rule } = decision.matchedRule;
    const effect = rule.effect === "EFFECT_DENY" ? "deny" : "allow";
    return `${verdict} by rule ${index + 1}: ${effect} ${rule.pattern}${rule.description ? ` (${rule.description})` : ""}`;
  }
  return `${verdict} by ${REASONS[decision.reason] || decision.reason}`;
}

/** The tools `label` may call, as a table of [server, tool, decision] rows, out of `total` when known. */
export function mayCallTable(label, rows, total) {
  const count = total === undefined ? `${rows.length}` : `${rows.length} of ${total}`;
  return h("div", { id: "may-call" },
    table(`Tools ${label} may call (${count})`, ["Tool", "Why"],
      rows.map(([server, tool, decision]) => h("tr", { "data-may-call": `${server}/${tool}` },
        h("td", { class: "mono" }, `${server}/${tool}`),
        h("td", {}, explanation(decision))))));
}

/** The tools `asked` may call, every upstream tool asked once (admins: it lists servers). */
export async function toolsOf(asked, signal) {
  const { servers = [] } = await api("/v1/mcp/servers?pageSize=100", { signal });
  const rows = [];
  for (const server of servers) {
    const { tools = [] } = await api(`/v1/mcp/servers/${server.name}/tools`, { signal });
    const decisions = await Promise.all(tools.map((tool) => asked.check(server.name, tool.name, signal)));
    tools.forEach((tool, i) => rows.push([server.name, tool.name, decisions[i]]));
  }
  return mayCallTable(asked.label, rows.filter(([, , decision]) => decision.allowed), rows.length);
}

/** A form that explains the decision for any server/tool. */
export function explainer(asked) {
  const target = h("input", { id: "explain-target", required: true, autocomplete: "off", placeholder: "github/create_issue" });
  const answer = h("p", { id: "explain-answer", "aria-live": "polite" });
  return h("form", {
    id: "explain",
    "aria-label": "Explain a decision",
    onsubmit: async (event) => {
      event.preventDefault();
      const [server, ...rest] = target.value.trim().split("/");
      try {
        const decision = await asked.check(server, rest.join("/"));
        replace(answer, badge(decision.allowed ? "allowed" : "denied", decision.allowed ? "good" : "bad"), " ", explanation(decision));
        answer.dataset.allowed = String(decision.allowed);
      } catch (error) {
        replace(answer, h("span", { class: "error" }, error.message));
      }
    },
  }, field("Server/tool", target), h("button", { type: "submit" }, "Explain"), answer);
}

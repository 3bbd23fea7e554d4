// "What may this caller do?": every tool of every upstream server, each decided by the
// users plugin's CheckPermission for the person; and any server/tool explained.
import { badge, field, h, replace, table } from "./dom.js";
import { api } from "./session.js";

const REASONS = {
  DECISION_REASON_RULE: "a rule",
  DECISION_REASON_ADMIN: "the admin flag",
  DECISION_REASON_DEFAULT_DENY: "no rule matched: denied by default",
};

function check(user, server, tool, signal) {
  return api(`/v1/users/${encodeURIComponent(user.userId)}:checkPermission`, { method: "POST", body: { server, tool }, signal });
}

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

/** The tools the person may call, as a table; every upstream tool asked once. */
export async function toolsOf(user, signal) {
  const { servers = [] } = await api("/v1/mcp/servers?pageSize=100", { signal });
  const rows = [];
  for (const server of servers) {
    const { tools = [] } = await api(`/v1/mcp/servers/${server.name}/tools`, { signal });
    const decisions = await Promise.all(tools.map((tool) => check(user, server.name, tool.name, signal)));
    tools.forEach((tool, i) => rows.push([server.name, tool, decisions[i]]));
  }
  const allowed = rows.filter(([, , decision]) => decision.allowed);
  return h("div", { id: "may-call" },
    table(`Tools ${user.email} may call (${allowed.length} of ${rows.length})`, ["Tool", "Why"],
      allowed.map(([server, tool, decision]) => h("tr", { "data-may-call": `${server}/${tool.name}` },
        h("td", { class: "mono" }, `${server}/${tool.name}`),
        h("td", {}, explanation(decision))))));
}

/** A form that explains the decision for any server/tool. */
export function explainer(user) {
  const target = h("input", { id: "explain-target", required: true, autocomplete: "off", placeholder: "github/create_issue" });
  const answer = h("p", { id: "explain-answer", "aria-live": "polite" });
  return h("form", {
    id: "explain",
    "aria-label": "Explain a decision",
    onsubmit: async (event) => {
      event.preventDefault();
      const [server, ...rest] = target.value.trim().split("/");
      try {
        const decision = await check(user, server, rest.join("/"));
        replace(answer, badge(decision.allowed ? "allowed" : "denied", decision.allowed ? "good" : "bad"), " ", explanation(decision));
        answer.dataset.allowed = String(decision.allowed);
      } catch (error) {
        replace(answer, h("span", { class: "error" }, error.message));
      }
    },
  }, field("Server/tool", target), h("button", { type: "submit" }, "Explain"), answer);
}

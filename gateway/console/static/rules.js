// Permissions edited as rules: an admin flag and ordered allow/deny rules over
// "<server>/<tool>" globs (deny wins; the users plugin decides, never this page).
import { h } from "./dom.js";

/** An editor for `permissions`; returns { element, value() } where value() reads it back. */
export function rulesEditor(permissions = {}, label = "Permissions") {
  const admin = h("input", { type: "checkbox", checked: permissions.admin || false });
  const rows = h("tbody", {});
  const add = (rule = { effect: "EFFECT_ALLOW", pattern: "", description: "" }) => rows.append(ruleRow(rule));
  for (const rule of permissions.rules || []) add(rule);
  const element = h("fieldset", { class: "rules" },
    h("legend", {}, label),
    h("label", {}, admin, " admin: every tool, whatever the rules say"),
    h("table", {},
      h("caption", {}, "Rules, in order: a deny that matches wins"),
      h("thead", {}, h("tr", {}, ["Effect", "Pattern (server/tool globs)", "Description", ""].map((name) => h("th", { scope: "col" }, name)))),
      rows),
    h("button", { type: "button", class: "secondary", onclick: () => add() }, "Add rule"));
  return {
    element,
    value: () => ({
      admin: admin.checked,
      rules: [...rows.querySelectorAll("tr")].map((row) => ({
        effect: row.querySelector("select").value,
        pattern: row.querySelector("input[name=pattern]").value.trim(),
        description: row.querySelector("input[name=description]").value.trim(),
      })).filter((rule) => rule.pattern),
    }),
  };
}

function ruleRow(rule) {
  const effect = h("select", { "aria-label": "Effect" },
    h("option", { value: "EFFECT_ALLOW" }, "allow"), h("option", { value: "EFFECT_DENY" }, "deny"));
  effect.value = rule.effect === "EFFECT_DENY" ? "EFFECT_DENY" : "EFFECT_ALLOW";
  const row = h("tr", { "data-rule": rule.pattern },
    h("td", {}, effect),
    h("td", {}, h("input", { name: "pattern", "aria-label": "Pattern", value: rule.pattern, placeholder: "github/*" })),
    h("td", {}, h("input", { name: "description", "aria-label": "Description", value: rule.description || "" })),
    h("td", {}));
  row.lastChild.append(h("button", { type: "button", class: "secondary", "aria-label": `Remove rule ${rule.pattern}`, onclick: () => row.remove() }, "Remove"));
  return row;
}

// Rules typed one per line: "allow github/*", "deny github/delete_*".
export function parseRules(text) {
  return text.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
    const [word, pattern = ""] = line.split(/\s+/, 2);
    return { effect: word.toLowerCase() === "deny" ? "EFFECT_DENY" : "EFFECT_ALLOW", pattern };
  });
}

/** A rule as one line of text. */
export function ruleText(rule) {
  return `${rule.effect === "EFFECT_DENY" ? "deny" : "allow"} ${rule.pattern}`;
}

// People and machine users: their permissions as rules, and "what may this caller do?",
// answered by the users plugin's CheckPermission (the page never decides).
import { badge, field, h, replace, table, when } from "./dom.js";
import { explainer, machineAsked, personAsked, toolsOf } from "./decisions.js";
import { rulesEditor, parseRules, ruleText } from "./rules.js";
import { api, onEvents } from "./session.js";

export const peopleView = {
  id: "people",
  title: "People",
  admin: true,
  async mount(container, { signal, status }) {
    const people = h("section", { "aria-labelledby": "people-title" });
    const detail = h("section", { id: "person", "aria-live": "polite" });
    const machines = h("section", { "aria-labelledby": "machines-title" });
    // Outside the list, which is re-read on events: the token stays until the view is left.
    const newToken = h("div", { id: "new-token", "aria-live": "assertive" });
    const view = { people, detail, machines, newToken, signal, status };
    replace(container, h("h2", {}, "People and machine users"), people, detail, machines, newToken);
    await Promise.all([loadPeople(view), loadMachines(view)]);
    // Changes made elsewhere (another admin, a login that provisions a person) come in
    // as events; the lists are read again, the open person's form is left alone.
    const quietly = (load) => () => load(view).catch((error) => status(error.message));
    onEvents("user.>", quietly(loadPeople), { signal });
    onEvents("machine_user.>", quietly(loadMachines), { signal });
  },
};

async function loadPeople(view) {
  const { users = [] } = await api("/v1/users?pageSize=100", { signal: view.signal });
  const email = h("input", { type: "email", required: true, autocomplete: "off" });
  const role = h("select", {}, h("option", { value: "ROLE_USER" }, "user"), h("option", { value: "ROLE_ADMIN" }, "admin"));
  replace(view.people,
    h("h3", { id: "people-title" }, "People"),
    table(`People (${users.length})`, ["Email", "Name", "Role", "Rules", "Last login", ""],
      users.map((user) => h("tr", { "data-user": user.email },
        h("td", {}, user.email),
        h("td", {}, user.displayName || ""),
        h("td", {}, badge(user.role === "ROLE_ADMIN" ? "admin" : "user", user.role === "ROLE_ADMIN" ? "warn" : "info")),
        h("td", { class: "mono" }, (user.permissions?.rules || []).map(ruleText).join(", ") || (user.permissions?.admin ? "admin" : "none")),
        h("td", {}, when(user.lastLoginTime)),
        h("td", {}, h("button", { type: "button", class: "secondary", "aria-label": `Open ${user.email}`, onclick: () => openPerson(view, user.userId) }, "Open"))))),
    h("form", {
      "aria-label": "Add a person",
      onsubmit: async (event) => {
        event.preventDefault();
        await guarded(view, `added ${email.value}`, () => api("/v1/users", { method: "POST", body: { email: email.value.trim(), role: role.value } }));
        await loadPeople(view);
      },
    }, field("Email", email), field("Role", role), h("button", { type: "submit" }, "Add person")));
}

async function openPerson(view, userId) {
  const { user } = await api(`/v1/users/${encodeURIComponent(userId)}`, { signal: view.signal });
  const editor = rulesEditor(user.permissions, `Permissions of ${user.email}`);
  const save = h("form", {
    id: "permissions-form",
    onsubmit: async (event) => {
      event.preventDefault();
      const body = { permissions: editor.value(), etag: user.etag };
      const saved = await guarded(view, `saved the permissions of ${user.email}`,
        () => api(`/v1/users/${encodeURIComponent(userId)}/permissions`, { method: "PATCH", body }));
      if (saved) await openPerson(view, userId);
    },
  }, editor.element, h("button", { type: "submit" }, "Save permissions"));
  replace(view.detail,
    h("h3", {}, `What may ${user.email} do?`),
    h("p", { class: "hint" }, "Every decision below is the users plugin's CheckPermission, with the rule that decided."),
    await toolsOf(personAsked(user), view.signal),
    explainer(personAsked(user)),
    save);
}

async function loadMachines(view) {
  const { machineUsers = [] } = await api("/v1/machine-users?pageSize=100", { signal: view.signal });
  const name = h("input", { required: true, autocomplete: "off" });
  const role = h("select", {}, h("option", { value: "ROLE_USER" }, "user"), h("option", { value: "ROLE_ADMIN" }, "admin"));
  const rules = h("textarea", { placeholder: "allow github/*\ndeny */delete_*" });
  replace(view.machines,
    h("h3", { id: "machines-title" }, "Machine users"),
    table(`Machine users (${machineUsers.length})`, ["Name", "Role", "Rules", "Token", "Expires", "Last used", ""],
      machineUsers.map((machine) => h("tr", { "data-machine-user": machine.name },
        h("td", {}, machine.name),
        h("td", {}, badge(machine.role === "ROLE_ADMIN" ? "admin" : "user", machine.role === "ROLE_ADMIN" ? "warn" : "info")),
        h("td", { class: "mono" }, (machine.permissions?.rules || []).map(ruleText).join(", ") || (machine.permissions?.admin ? "admin" : "none")),
        h("td", { class: "mono" }, machine.tokenInfo?.prefix ? `${machine.tokenInfo.prefix}…${machine.tokenInfo.lastFour || ""}` : ""),
        h("td", {}, when(machine.expireTime) || "never"),
        h("td", {}, when(machine.lastUsedTime) || "never"),
        h("td", {}, h("button", { type: "button", class: "secondary", "aria-label": `Open ${machine.name}`,
          onclick: () => openMachine(view, machine.machineUserId) }, "Open"), " ",
        h("button", { type: "button", class: "secondary", "aria-label": `Delete ${machine.name}`,
          onclick: async () => {
            await guarded(view, `deleted ${machine.name}`, () => api(`/v1/machine-users/${machine.machineUserId}`, { method: "DELETE" }));
            await loadMachines(view);
          } }, "Delete"))))),
    h("form", {
      id: "machine-add", "aria-label": "Add a machine user",
      onsubmit: async (event) => {
        event.preventDefault();
        const body = { name: name.value.trim(), role: role.value, permissions: { rules: parseRules(rules.value) } };
        const created = await guarded(view, `added ${body.name}`, () => api("/v1/machine-users", { method: "POST", body }));
        if (!created) return;
        await loadMachines(view);
        replace(view.newToken,
          h("p", { class: "secret" }, h("strong", {}, `The token of ${body.name}, shown this once: `),
            h("code", { id: "new-token-value" }, created.token)));
      },
    }, field("Name", name), field("Role", role), field("Rules, one a line", rules), h("button", { type: "submit" }, "Add machine user")));
}

async function openMachine(view, machineUserId) {
  const path = `/v1/machine-users/${encodeURIComponent(machineUserId)}`;
  const { machineUser: machine } = await api(path, { signal: view.signal });
  const editor = rulesEditor(machine.permissions, `Permissions of ${machine.name}`);
  const role = h("select", {}, h("option", { value: "ROLE_USER" }, "user"), h("option", { value: "ROLE_ADMIN" }, "admin"));
  role.value = machine.role === "ROLE_ADMIN" ? "ROLE_ADMIN" : "ROLE_USER";
  const description = h("input", { autocomplete: "off", value: machine.description || "" });
  const save = h("form", {
    id: "machine-form",
    onsubmit: async (event) => {
      event.preventDefault();
      const body = { role: role.value, description: description.value.trim(), permissions: editor.value(), etag: machine.etag };
      const saved = await guarded(view, `saved ${machine.name}`,
        () => api(`${path}?updateMask=role,description,permissions`, { method: "PATCH", body }));
      if (saved) await openMachine(view, machineUserId);
    },
  }, field("Role", role), field("Description", description), editor.element, h("button", { type: "submit" }, "Save machine user"));
  replace(view.detail,
    h("h3", {}, `What may ${machine.name} do?`),
    h("p", { class: "hint" }, "Every decision below is the machine-users plugin's CheckMachineUserPermission, with the rule that decided."),
    await toolsOf(machineAsked(machine), view.signal),
    explainer(machineAsked(machine)),
    save);
}

async function guarded(view, what, call) {
  try {
    const answer = await call();
    view.status(what);
    return answer;
  } catch (error) {
    view.status(`${what.split(" ")[0]} failed: ${error.message}`);
    return null;
  }
}

// MCP: the upstream servers the gateway federates, with their state, last error and
// tools; add, disable or enable, and refresh a server (the /v1/mcp/servers API). The
// list is read again whenever the gateway says a server's state, last error or tools
// changed (GET /console/api/mcp, SSE): nothing is polled.
import { badge, field, h, replace, table, when } from "./dom.js";
import { api, live } from "./session.js";

const SERVERS = "/v1/mcp/servers";
const STATES = {
  SERVER_STATE_READY: ["ready", "good"],
  SERVER_STATE_CONNECTING: ["connecting", "info"],
  SERVER_STATE_FAILING: ["failing", "bad"],
  SERVER_STATE_DISABLED: ["disabled", "warn"],
};

export const mcpView = {
  id: "mcp",
  title: "MCP servers",
  admin: true,
  async mount(container, { signal, status }) {
    const list = h("div", { id: "mcp-servers" }, h("p", { class: "hint" }, "Loading…"));
    const tools = h("section", { id: "mcp-tools", "aria-live": "polite" });
    const view = { list, tools, signal, status };
    replace(container,
      h("h2", {}, "MCP servers"),
      h("p", { class: "hint" }, "The upstream MCP servers the gateway serves on /mcp, as this gateway replica sees them."),
      addForm(view),
      list,
      tools);
    live("/console/api/mcp", (type) => {
      if (type === "changed") load(view).catch((error) => status(`MCP servers: ${error.message}`));
    }, { signal, onState: (state) => status(`MCP feed: ${state}`) });
  },
};

async function load(view) {
  const read = (view.reads = (view.reads || 0) + 1);
  const { servers = [] } = await api(`${SERVERS}?pageSize=100`, { signal: view.signal });
  if (read === view.reads) render(view, servers); // an older read answering late is stale
}

async function act(view, what, call) {
  try {
    await call();
    view.status(what);
  } catch (error) {
    view.status(`${what} failed: ${error.message}`);
  }
  await load(view);
}

function render(view, servers) {
  if (!servers.length) {
    replace(view.list, h("p", {}, "No upstream MCP server yet."));
    return;
  }
  replace(view.list, table(`Servers (${servers.length})`,
    ["Name", "Transport", "State", "Tools", "Last error", "Actions"],
    servers.map((server) => row(view, server))));
}

function row(view, server) {
  const state = server.status?.state || "SERVER_STATE_UNSPECIFIED";
  const [word, tone] = STATES[state] || ["unknown", "warn"];
  const enabled = server.enabled !== false;
  const target = server.streamableHttp ? server.streamableHttp.url : [server.stdio?.command, ...(server.stdio?.args || [])].join(" ");
  return h("tr", { "data-server": server.name, "data-state": word },
    h("td", {}, h("strong", {}, server.name), server.description ? h("div", { class: "muted" }, server.description) : null),
    h("td", { class: "mono" }, server.streamableHttp ? "HTTP " : "stdio ", target),
    h("td", {}, badge(word, tone)),
    h("td", {}, String(server.status?.toolCount || 0), server.status?.toolsFetchTime ? h("div", { class: "muted" }, when(server.status.toolsFetchTime)) : null),
    h("td", { class: "error" }, server.status?.lastError || ""),
    h("td", {},
      h("button", { type: "button", class: "secondary", "aria-label": `Tools of ${server.name}`, onclick: () => showTools(view, server.name) }, "Tools"), " ",
      h("button", { type: "button", class: "secondary", "aria-label": `Refresh ${server.name}`,
        onclick: () => act(view, `refreshed ${server.name}`, () => api(`${SERVERS}/${server.name}:refresh`, { method: "POST", body: {} })) }, "Refresh"), " ",
      h("button", { type: "button", class: "secondary", "aria-label": `${enabled ? "Disable" : "Enable"} ${server.name}`,
        onclick: () => act(view, `${enabled ? "disabled" : "enabled"} ${server.name}`,
          () => api(`${SERVERS}/${server.name}?updateMask=enabled`, { method: "PATCH", body: { enabled: !enabled } })) },
        enabled ? "Disable" : "Enable")));
}

async function showTools(view, name) {
  const { tools = [], status } = await api(`${SERVERS}/${name}/tools`, { signal: view.signal });
  replace(view.tools,
    h("h3", {}, `Tools of ${name}`),
    tools.length
      ? table(`${tools.length} tools served as ${name}__<tool>`, ["Tool", "Served as", "Description"],
        tools.map((tool) => h("tr", { "data-tool": tool.exposedName },
          h("td", { class: "mono" }, tool.name),
          h("td", { class: "mono" }, tool.exposedName),
          h("td", {}, tool.title || tool.description || ""))))
      : h("p", {}, `No tool served (${(STATES[status?.state] || ["unknown"])[0]}).`));
}

function addForm(view) {
  const name = h("input", { name: "name", required: true, pattern: "[a-z0-9][a-z0-9\\-]{0,30}", autocomplete: "off" });
  const transport = h("select", { name: "transport" },
    h("option", { value: "http" }, "Streamable HTTP"), h("option", { value: "stdio" }, "stdio"));
  const target = h("input", { name: "target", required: true, autocomplete: "off", placeholder: "https://example.com/mcp or a command" });
  const args = h("input", { name: "args", autocomplete: "off", placeholder: "stdio only, space-separated" });
  const description = h("input", { name: "description", autocomplete: "off" });
  return h("form", {
    id: "mcp-add", "aria-label": "Add a server",
    onsubmit: (event) => {
      event.preventDefault();
      const server = { name: name.value.trim(), description: description.value.trim() };
      if (transport.value === "http") server.streamableHttp = { url: target.value.trim() };
      else server.stdio = { command: target.value.trim(), args: args.value.split(/\s+/).filter(Boolean) };
      act(view, `added ${server.name}`, () => api(SERVERS, { method: "POST", body: server }))
        .then(() => event.target.reset());
    },
  },
  field("Name", name), field("Transport", transport), field("URL or command", target),
  field("Arguments", args), field("Description", description),
  h("button", { type: "submit" }, "Add server"));
}

// Routes: every HTTP route and gRPC method with who may call it (GET /console/api/routes).
import { badge, field, h, replace, table } from "./dom.js";
import { api } from "./session.js";

const TONES = { PUBLIC: "good", AUTHENTICATED: "info", ADMIN: "warn", INTERNAL: "bad" };

export const routesView = {
  id: "routes",
  title: "Routes",
  admin: false,
  async mount(container, { signal }) {
    const filter = h("input", { type: "search", placeholder: "path, RPC or service" });
    const results = h("div", { id: "routes-tables" }, h("p", { class: "hint" }, "Loading…"));
    replace(container,
      h("h2", {}, "Routes"),
      h("p", { class: "hint" }, "Every HTTP route and gRPC method of the mesh with its declared access; the same table /openapi.json is generated from."),
      h("form", { role: "search", onsubmit: (event) => event.preventDefault() }, field("Filter", filter)),
      results);
    const routes = await api("/console/api/routes", { signal });
    const show = () => render(results, routes, filter.value.trim().toLowerCase());
    filter.addEventListener("input", show);
    show();
  },
};

function matches(text, needle) {
  return !needle || text.toLowerCase().includes(needle);
}

function render(results, routes, needle) {
  const http = routes.http.filter((r) => matches(`${r.method} ${r.path} ${r.rpc} ${r.service}`, needle));
  const grpc = routes.grpc.filter((m) => matches(`${m.path} ${m.service}`, needle));
  replace(results,
    table(`HTTP routes (${http.length})`, ["Method", "Path", "Access", "RPC", "Service", "What"],
      http.map((r) => h("tr", { "data-route": `${r.method} ${r.path}` },
        h("td", { class: "mono" }, r.method),
        h("td", { class: "mono" }, r.path),
        h("td", {}, badge(r.access, TONES[r.access] || "info")),
        h("td", { class: "mono" }, r.rpc),
        h("td", {}, r.service),
        h("td", {}, r.summary)))),
    table(`gRPC methods (${grpc.length})`, ["Method", "Access", "Kind", "Service", "What"],
      grpc.map((m) => h("tr", { "data-rpc": m.path },
        h("td", { class: "mono" }, m.path),
        h("td", {}, badge(m.access, TONES[m.access] || "info")),
        h("td", {}, m.streaming),
        h("td", {}, m.service),
        h("td", {}, m.summary)))));
}

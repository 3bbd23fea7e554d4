// The mesh: services, instances, versions and health, pushed by the gateway as the
// registry's watch reports them (GET /console/api/mesh, Server-Sent Events).
import { badge, h, replace, table, when } from "./dom.js";
import { live } from "./session.js";

const TONES = { SERVING: "good", NOT_SERVING: "bad", UNREACHABLE: "bad", UNKNOWN: "warn" };

export const meshView = {
  id: "mesh",
  title: "Mesh",
  admin: false,
  mount(container, { signal, status }) {
    const body = h("div", { id: "mesh-services", "aria-busy": "true" }, h("p", { class: "hint" }, "Waiting for the registry…"));
    replace(container,
      h("h2", {}, "Mesh"),
      h("p", { class: "hint" }, "Every registered service and its instances, as the registry reports them; changes arrive as they happen."),
      body);
    live("/console/api/mesh", (type, data) => {
      if (type === "mesh") render(body, data);
    }, { signal, onState: (state) => status(`mesh feed: ${state}`) });
  },
};

function render(body, mesh) {
  body.setAttribute("aria-busy", "false");
  if (!mesh.services.length) {
    replace(body, h("p", {}, "No service is registered."));
    return;
  }
  replace(body, h("div", { class: "cards" }, mesh.services.map(card)));
}

function card(service) {
  const health = service.serving ? badge("serving", "good") : badge("not serving", "bad");
  const rows = service.instances.map((instance) =>
    h("tr", { "data-instance": instance.id, "data-health": instance.health },
      h("td", { class: "mono" }, instance.address),
      h("td", {}, instance.version || service.version),
      h("td", {}, badge(instance.health.replace("_", " ").toLowerCase(), TONES[instance.health] || "warn")),
      h("td", {}, when(instance.healthChangeTime)),
      h("td", {}, instance.health === "SERVING" ? "held" : "held, out of rotation")));
  return h("article", { class: "card", "data-service": service.name, "data-serving": String(service.serving), "aria-label": `service ${service.name}` },
    h("h3", {}, h("span", {}, service.name, " ", h("span", { class: "muted" }, service.version)), health),
    service.grpcServices.length ? h("p", { class: "muted mono" }, service.grpcServices.join(", ")) : null,
    rows.length
      ? table(`Instances of ${service.name}`, ["Address", "Version", "Health", "Health since", "Lease"], rows)
      : h("p", {}, "No instance."));
}

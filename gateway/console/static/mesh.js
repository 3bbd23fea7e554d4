// The mesh: services, instances, versions, health and leases, pushed by the gateway as
// the registry's watch reports them (GET /console/api/mesh, Server-Sent Events): a
// "mesh" frame per change of the mesh, a "lease" frame per lease renewal. Each lease is
// counted down here, against the gateway's clock (every frame carries its "now").
import { badge, h, replace, table, when } from "./dom.js";
import { live } from "./session.js";

const TONES = { SERVING: "good", NOT_SERVING: "bad", UNREACHABLE: "bad", UNKNOWN: "warn" };
const TICK_MILLIS = 1000;

export const meshView = {
  id: "mesh",
  title: "Mesh",
  admin: false,
  mount(container, { signal, status }) {
    const body = h("div", { id: "mesh-services", "aria-busy": "true" }, h("p", { class: "hint" }, "Waiting for the registry…"));
    // Gateway time minus browser time, in seconds; instance id -> lease end, Unix seconds.
    const leases = { offset: 0, ends: new Map() };
    replace(container,
      h("h2", {}, "Mesh"),
      h("p", { class: "hint" }, "Every registered service and its instances, as the registry reports them; changes and lease renewals arrive as they happen. An instance that stops renewing its lease is removed when the lease runs out."),
      body);
    const timer = setInterval(() => showLeases(body, leases), TICK_MILLIS);
    signal.addEventListener("abort", () => clearInterval(timer));
    live("/console/api/mesh", (type, data) => {
      leases.offset = data.now - Date.now() / 1000;
      if (type === "mesh") {
        leases.ends = new Map(data.services.flatMap((s) => s.instances.map((i) => [i.id, i.leaseExpireTime])));
        render(body, data);
      } else if (type === "lease") {
        for (const [id, end] of Object.entries(data.leases)) leases.ends.set(id, end);
      }
      showLeases(body, leases);
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
      h("td", { class: "lease", "data-lease-for": instance.id, "data-serving": String(instance.health === "SERVING") })));
  return h("article", { class: "card", "data-service": service.name, "data-serving": String(service.serving), "aria-label": `service ${service.name}` },
    h("h3", {}, h("span", {}, service.name, " ", h("span", { class: "muted" }, service.version)), health),
    service.grpcServices.length ? h("p", { class: "muted mono" }, service.grpcServices.join(", ")) : null,
    rows.length
      ? table(`Instances of ${service.name}`, ["Address", "Version", "Health", "Health since", "Lease runs out in"], rows)
      : h("p", {}, "No instance."));
}

// Every lease cell: the seconds left unless renewed, or that it ran out (the registry
// removes the instance at its next sweep).
function showLeases(body, leases) {
  const now = Date.now() / 1000 + leases.offset;
  for (const cell of body.querySelectorAll("td[data-lease-for]")) {
    const end = leases.ends.get(cell.dataset.leaseFor);
    if (!end) {
      replace(cell, h("span", { class: "muted" }, "unknown"));
      continue;
    }
    const left = Math.max(0, Math.ceil(end - now));
    cell.dataset.leaseExpire = String(end);
    cell.dataset.leaseLeft = String(left);
    const rotation = cell.dataset.serving === "true" ? null : h("span", { class: "muted" }, ", out of rotation");
    replace(cell, left > 0
      ? h("span", { title: `until ${when(end)} unless renewed` }, `${left} s`)
      : badge("ran out", "bad"), rotation);
  }
}

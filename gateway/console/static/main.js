// The console's shell: sign-in, the navigation between views, the status line.
import { h, replace } from "./dom.js";
import { auditView } from "./audit.js";
import { eventsView } from "./events.js";
import { mcpView } from "./mcp.js";
import { meshView } from "./mesh.js";
import { peopleView } from "./people.js";
import { routesView } from "./routes.js";
import { toolsView } from "./tools.js";
import { ApiError, api, session } from "./session.js";

const VIEWS = [meshView, routesView, mcpView, toolsView, peopleView, eventsView, auditView];

const $ = (id) => document.getElementById(id);
let caller = null;
let current = null; // { view, controller }

function status(text) {
  $("status").textContent = text;
}

function allowed() {
  return VIEWS.filter((view) => !view.admin || caller.admin);
}

function renderNav() {
  replace($("nav-list"), allowed().map((view) =>
    h("li", {}, h("a", { href: `#${view.id}`, id: `nav-${view.id}` }, view.title))));
  $("nav").hidden = false;
  $("who").hidden = false;
  const kind = caller.kind.toLowerCase();
  $("who-text").textContent = `${kind} ${caller.email || caller.subject}${caller.admin ? " (admin)" : ""}`;
}

function show() {
  if (!caller) return;
  const views = allowed();
  const wanted = location.hash.slice(1);
  const view = views.find((v) => v.id === wanted) || views[0];
  if (current) current.controller.abort();
  const controller = new AbortController();
  current = { view, controller };
  for (const link of document.querySelectorAll("#nav-list a")) {
    if (link.id === `nav-${view.id}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const container = $("view");
  document.title = `${view.title} · plugmesh console`;
  Promise.resolve(view.mount(container, { signal: controller.signal, status, caller }))
    .catch((error) => {
      if (controller.signal.aborted) return;
      replace(container, h("h2", {}, view.title), h("p", { class: "error", role: "alert" }, error.message));
    });
}

async function signIn(token) {
  session.keep(token);
  try {
    caller = await api("/console/api/me");
  } catch (error) {
    session.forget();
    caller = null;
    throw error;
  }
  renderNav();
  show();
}

function signOut(message = "") {
  if (current) current.controller.abort();
  current = null;
  caller = null;
  session.forget();
  location.replace("#");
  location.reload();
  if (message) status(message);
}

function boot() {
  const form = $("sign-in-form");
  const signInSection = $("sign-in");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    $("token").value = "";
    $("sign-in-error").textContent = "";
    try {
      await signIn(token);
    } catch (error) {
      const refused = error instanceof ApiError && error.status === 401;
      $("sign-in-error").textContent = refused ? "The gateway refused this token." : error.message;
    }
  });
  $("sign-out").addEventListener("click", () => signOut());
  session.onRefused = () => signOut("The gateway no longer accepts the token: signed out.");
  window.addEventListener("hashchange", show);
  if (session.token()) {
    signIn(session.token()).catch(() => replace($("view"), signInSection));
  }
}

boot();

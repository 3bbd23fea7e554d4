// Events: the mesh's events as they are published (GET /console/api/events, SSE),
// filtered by type pattern and subject; the dead letters, each with a Replay button.
import { field, h, replace, table, when } from "./dom.js";
import { api, live } from "./session.js";

// Rows kept in the tail; older ones scroll away.
const KEPT = 200;

export const eventsView = {
  id: "events",
  title: "Events",
  admin: true,
  async mount(container, { signal, status }) {
    const rows = h("tbody", { id: "event-rows" });
    const letters = h("section", { id: "dead-letters", "aria-labelledby": "letters-title" });
    const type = h("input", { name: "type", autocomplete: "off", placeholder: "user.* or > for all" });
    const subject = h("input", { name: "subject", autocomplete: "off", placeholder: "users/… (starts with)" });
    const state = h("span", { id: "tail-state", class: "muted" }, "connecting…");
    let feed = null;
    const follow = () => {
      if (feed) feed.abort();
      feed = new AbortController();
      signal.addEventListener("abort", () => feed.abort(), { once: true });
      rows.replaceChildren();
      const query = new URLSearchParams({ type: type.value.trim(), subject: subject.value.trim() });
      live(`/console/api/events?${query}`, (kind, data) => {
        if (kind === "ready") {
          state.textContent = `following ${data.subject}`;
          state.dataset.ready = "true";
        } else if (kind === "event") {
          rows.prepend(eventRow(data));
          while (rows.childElementCount > KEPT) rows.lastElementChild.remove();
        }
      }, { signal: feed.signal, onState: (text) => status(`events feed: ${text}`) });
    };
    replace(container,
      h("h2", {}, "Events"),
      h("form", { id: "event-filters", role: "search", "aria-label": "Filter the events",
        onsubmit: (event) => { event.preventDefault(); follow(); } },
        field("Type", type), field("Subject", subject), h("button", { type: "submit" }, "Apply"), state),
      h("table", {},
        h("caption", {}, "Live tail, newest first"),
        h("thead", {}, h("tr", {}, ["Time", "Type", "Subject", "Source", "Payload"].map((name) => h("th", { scope: "col" }, name)))),
        rows),
      letters);
    follow();
    await loadLetters(letters, signal, status);
  },
};

function eventRow(event) {
  const payload = JSON.stringify(event.payload);
  return h("tr", { "data-event-type": event.type, "data-event-id": event.id },
    h("td", {}, when(event.time)),
    h("td", { class: "mono" }, event.type),
    h("td", { class: "mono" }, event.subject),
    h("td", { class: "mono" }, event.source),
    h("td", {}, h("details", {}, h("summary", {}, payload.length > 80 ? `${payload.slice(0, 80)}…` : payload),
      h("pre", {}, JSON.stringify(event.payload, null, 2)))));
}

async function loadLetters(section, signal, status) {
  const { deadLetters = [] } = await api("/console/api/deadletters", { signal });
  replace(section,
    h("h3", { id: "letters-title" }, "Dead letters"),
    h("p", { class: "hint" }, "Events a consumer gave up on. Replay publishes one again on its subject (consumers that handled it skip it by its id) and removes it here."),
    deadLetters.length
      ? table(`Dead letters (${deadLetters.length})`, ["When", "Consumer", "Type", "Event", "Attempts", "Error", ""],
        deadLetters.map((letter) => h("tr", { "data-letter": letter.eventId },
          h("td", {}, when(letter.time)),
          h("td", {}, letter.consumer),
          h("td", { class: "mono" }, letter.eventType),
          h("td", { class: "mono" }, letter.eventId),
          h("td", {}, String(letter.attempts)),
          h("td", { class: "error" }, letter.error),
          h("td", {}, h("button", { type: "button", class: "secondary", "aria-label": `Replay ${letter.eventId}`,
            onclick: async () => {
              try {
                await api(`/console/api/deadletters/${letter.sequence}:replay`, { method: "POST" });
                status(`replayed ${letter.eventId}`);
              } catch (error) {
                status(`replay failed: ${error.message}`);
              }
              await loadLetters(section, signal, status);
            } }, "Replay")))))
      : h("p", { id: "no-letters" }, "No dead letter."));
}

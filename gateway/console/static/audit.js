// Audit: search the hash-chained log with filters and cursor paging, read one entry,
// and verify the chain (the /v1/audit API).
import { badge, field, h, replace, table, when } from "./dom.js";
import { api, onEvents } from "./session.js";

const OUTCOMES = { OUTCOME_SUCCESS: ["success", "good"], OUTCOME_FAILURE: ["failure", "bad"], OUTCOME_DENIED: ["denied", "warn"] };

export const auditView = {
  id: "audit",
  title: "Audit",
  admin: true,
  async mount(container, { signal, status }) {
    const inputs = {
      action: h("input", { name: "action", autocomplete: "off", placeholder: "user.* or auth.login" }),
      userId: h("input", { name: "userId", autocomplete: "off" }),
      resource: h("input", { name: "resource", autocomplete: "off" }),
      outcome: h("select", { name: "outcome" }, h("option", { value: "" }, "any"),
        Object.entries(OUTCOMES).map(([value, [word]]) => h("option", { value }, word))),
      startTime: h("input", { name: "startTime", type: "datetime-local" }),
      endTime: h("input", { name: "endTime", type: "datetime-local" }),
      pageSize: h("input", { name: "pageSize", type: "number", min: "1", max: "100", value: "25" }),
    };
    const results = h("div", { id: "audit-results" });
    const detail = h("section", { id: "audit-entry", "aria-live": "polite" });
    const verdict = h("div", { id: "audit-verify", "aria-live": "polite" });
    const view = { inputs, results, detail, signal, status, tokens: [""] };
    replace(container,
      h("h2", {}, "Audit log"),
      h("form", { id: "audit-search", role: "search", "aria-label": "Search the audit log",
        onsubmit: (event) => { event.preventDefault(); view.tokens = [""]; search(view); } },
        field("Action", inputs.action), field("User or machine user id", inputs.userId),
        field("Resource", inputs.resource), field("Outcome", inputs.outcome),
        field("From", inputs.startTime), field("Before", inputs.endTime), field("Page size", inputs.pageSize),
        h("button", { type: "submit" }, "Search")),
      h("p", {}, h("button", { type: "button", id: "verify", class: "secondary", onclick: () => verify(verdict, status) }, "Verify the chain"), " ", verdict),
      results,
      detail);
    await search(view);
    // The log records every event: on the first page, new entries come in as they do.
    onEvents(">", () => {
      if (view.tokens.length === 1) search(view).catch((error) => status(error.message));
    }, { signal, quietMillis: 500 });
  },
};

function query(view) {
  const params = new URLSearchParams();
  for (const [name, input] of Object.entries(view.inputs)) {
    const value = input.value.trim();
    if (!value) continue;
    params.set(name, input.type === "datetime-local" ? new Date(value).toISOString() : value);
  }
  const token = view.tokens[view.tokens.length - 1];
  if (token) params.set("pageToken", token);
  return params;
}

async function search(view) {
  const { entries = [], nextPageToken = "" } = await api(`/v1/audit/entries?${query(view)}`, { signal: view.signal });
  const page = view.tokens.length;
  replace(view.results,
    table(`Entries, page ${page} (${entries.length})`, ["Occurred", "Actor", "Action", "Resource", "Outcome", ""],
      entries.map((entry) => {
        const [word, tone] = OUTCOMES[entry.outcome] || ["unknown", "info"];
        return h("tr", { "data-entry": entry.entryId },
          h("td", {}, when(entry.occurTime)),
          h("td", {}, entry.actor?.displayName || entry.actor?.id || (entry.actor?.type || "").replace("ACTOR_TYPE_", "").toLowerCase()),
          h("td", { class: "mono" }, entry.action),
          h("td", { class: "mono" }, entry.resource || ""),
          h("td", {}, badge(word, tone)),
          h("td", {}, h("button", { type: "button", class: "secondary", "aria-label": `Details of entry ${entry.sequence}`, onclick: () => show(view, entry.entryId) }, "Details")));
      })),
    h("nav", { "aria-label": "Pages" },
      h("button", { type: "button", id: "audit-previous", class: "secondary", disabled: page === 1,
        onclick: () => { view.tokens.pop(); search(view); } }, "Previous page"), " ",
      h("button", { type: "button", id: "audit-next", class: "secondary", disabled: !nextPageToken,
        onclick: () => { view.tokens.push(nextPageToken); search(view); } }, "Next page")));
}

async function show(view, entryId) {
  const { entry } = await api(`/v1/audit/entries/${encodeURIComponent(entryId)}`, { signal: view.signal });
  const facts = [
    ["Entry", entry.entryId], ["Sequence", entry.sequence], ["Occurred", when(entry.occurTime)],
    ["Recorded", when(entry.recordTime)], ["Actor", `${entry.actor?.type || ""} ${entry.actor?.id || ""} ${entry.actor?.displayName || ""}`],
    ["Action", entry.action], ["Resource", entry.resource], ["Outcome", entry.outcome], ["Source", entry.source],
    ["IP address", entry.ipAddress], ["Request", entry.requestId], ["Trace", entry.traceId],
    ["Hash", entry.hash], ["Previous hash", entry.previousHash],
  ];
  replace(view.detail,
    h("h3", {}, `Entry ${entry.sequence}`),
    h("dl", { class: "facts" }, facts.filter(([, value]) => value).map(([name, value]) => [h("dt", {}, name), h("dd", { class: "mono" }, String(value))])),
    h("h4", {}, "Details"),
    h("pre", {}, JSON.stringify(entry.details || {}, null, 2)));
  view.detail.scrollIntoView();
}

async function verify(verdict, status) {
  replace(verdict, "checking…");
  const result = await api("/v1/audit/entries:verify", { method: "POST", body: {} });
  verdict.dataset.intact = String(Boolean(result.intact));
  replace(verdict, result.intact
    ? [badge("intact", "good"), ` ${result.entriesChecked} entries checked; head ${String(result.headHash || "").slice(0, 16)}…`]
    : [badge("broken", "bad"), ` at entry ${result.firstBrokenSequence} (${result.reason}): ${result.message}`]);
  status("verified the audit chain");
}

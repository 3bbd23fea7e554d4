// The signed-in caller: the token lives in sessionStorage (this tab only), is sent as
// Authorization: Bearer, and is never put in a URL or written to the console.
import { readEvents } from "./sse.js";

const KEY = "plugmesh.console.token";
const RETRY_MILLIS = [500, 1000, 2000, 5000];

/** Raised for an answer that is not 2xx; carries the google.rpc.Status message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const session = {
  token: () => sessionStorage.getItem(KEY),
  keep: (token) => sessionStorage.setItem(KEY, token),
  forget: () => sessionStorage.removeItem(KEY),
  /** Called when the gateway refuses the token (401): the page signs out. */
  onRefused: () => {},
};

function headers(extra = {}) {
  return { Authorization: `Bearer ${session.token()}`, ...extra };
}

/** Call the gateway's HTTP/JSON API; resolves to the decoded JSON answer. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, headers: headers(), signal };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : {};
  if (!response.ok) {
    if (response.status === 401) session.onRefused();
    throw new ApiError(response.status, data.message || `${response.status} ${response.statusText}`);
  }
  return data;
}

/**
 * Follow a live feed: onEvent(type, parsed data) for each event; reconnects after a
 * break until `signal` aborts. onState("live" | "reconnecting" | message) reports it.
 */
export async function live(path, onEvent, { signal, onState = () => {} }) {
  let attempt = 0;
  while (!signal.aborted) {
    try {
      const response = await fetch(path, { headers: headers({ Accept: "text/event-stream" }), signal });
      if (response.status === 401) {
        session.onRefused();
        return;
      }
      if (!response.ok) {
        const data = await response.json().catch(() => ({}));
        onState(data.message || `${response.status}`);
        if (response.status < 500) return; // refused: asking again would not help
        throw new ApiError(response.status, data.message);
      }
      attempt = 0;
      onState("live");
      await readEvents(response, (type, data) => onEvent(type, JSON.parse(data)));
    } catch {
      if (signal.aborted) return;
    }
    if (signal.aborted) return;
    onState("reconnecting");
    const delay = RETRY_MILLIS[Math.min(attempt, RETRY_MILLIS.length - 1)];
    attempt += 1;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/**
 * Call onChange() after events of the type pattern are published (bursts coalesce into
 * one call `quietMillis` after the last), until `signal` aborts; and once the gateway has
 * subscribed (after every reconnection too), for what happened before. Admins only: it
 * follows GET /console/api/events.
 */
export function onEvents(pattern, onChange, { signal, quietMillis = 300 }) {
  let timer = null;
  signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
  live(`/console/api/events?${new URLSearchParams({ type: pattern })}`, (type) => {
    if (type !== "event" && type !== "ready") return;
    clearTimeout(timer);
    timer = setTimeout(onChange, quietMillis);
  }, { signal });
}

// hookd's customer portal: a client of the customer API, nothing more. Every rule
// (who may see what, what a valid URL is, what a read-only session may do) is the
// server's; this page only calls the routes a customer's own code could call.
//
// The credential (a portal session token, or an API key typed on the sign-in page) is
// kept in this tab's sessionStorage and sent as a bearer token: it carries no ambient
// authority, so a cross-site request cannot use it, and it works inside an iframe.
// Every value from the server reaches the page as text (textContent), never as HTML.

import { EXAMPLES } from "./examples.js";

const STORAGE_KEY = "hookd.portal.credential";
const main = document.getElementById("main");
const notice = document.getElementById("notice");

// ---------------------------------------------------------------- credential

let memoryCredential = null;

function loadCredential() {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    if (raw) return JSON.parse(raw);
  } catch (_) { /* storage blocked (some embedded contexts): memory only */ }
  return memoryCredential;
}

function saveCredential(credential) {
  memoryCredential = credential;
  try {
    if (credential) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credential));
    else sessionStorage.removeItem(STORAGE_KEY);
  } catch (_) { /* memory only */ }
}

function credentialLive(credential) {
  return credential && (!credential.expires_at || credential.expires_at * 1000 > Date.now());
}

// ---------------------------------------------------------------- DOM helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function svg(tag, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  return el;
}

function render(title, ...content) {
  document.title = `${title} · Webhooks`;
  main.replaceChildren(h("h1", {}, title), ...content.flat().filter((c) => c !== null && c !== undefined && c !== false));
  main.focus({ preventScroll: true });
}

// A success message survives the re-render its action causes (one route).
let keepNotice = false;

function say(message, ok = false) {
  keepNotice = ok;
  notice.textContent = message;
  notice.classList.toggle("ok", ok);
  notice.hidden = false;
}

function clearNotice() {
  notice.hidden = true;
  notice.textContent = "";
}

function time(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  return new Date(seconds * 1000).toLocaleString();
}

function isoTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function badge(state) {
  return h("span", { class: `badge ${state}` }, state);
}

function readOnly() {
  return Boolean(loadCredential()?.read_only);
}

// A button that changes something: absent from a read-only session's pages (the
// server refuses those changes anyway).
function action(label, onclick, cls = "") {
  if (readOnly()) return null;
  return h("button", { type: "button", class: cls, onclick }, label);
}

function copyButton(text) {
  return h("button", {
    type: "button",
    onclick: async (e) => {
      try {
        await navigator.clipboard.writeText(text);
        e.target.textContent = "Copied";
      } catch (_) {
        e.target.textContent = "Select and copy it";
      }
    },
  }, "Copy");
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `The server answered ${status}.`);
    this.status = status;
    this.code = body?.error?.code;
  }
}

async function api(method, path, body) {
  const credential = loadCredential();
  const headers = { Accept: "application/json" };
  if (credential) headers.Authorization = `Bearer ${credential.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch (_) { parsed = null; }
  if (!response.ok) {
    if (response.status === 401 && credential) {
      saveCredential(null);
      showSignIn("Your session has ended. Ask for a new link, or sign in with an API key.");
    }
    throw new ApiError(response.status, parsed);
  }
  return parsed;
}

async function guarded(work) {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) say(error.message);
    return undefined;
  }
}

let catalogCache = null;
async function catalog() {
  if (!catalogCache) catalogCache = (await api("GET", "/v3/webhooks/event-types")).data;
  return catalogCache;
}

// ---------------------------------------------------------------- sign-in

async function redeemLink(token) {
  // The token leaves the address bar (and the history) before anything else happens.
  history.replaceState(null, "", `${location.pathname}#/endpoints`);
  try {
    const response = await fetch("/portal/api/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token }),
      credentials: "omit",
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      saveCredential(null);
      showLinkRefused(body?.error?.message);
      return false;
    }
    const session = body.data;
    saveCredential({
      kind: "session", token: session.session_token, account_id: session.account_id,
      read_only: session.read_only, expires_at: session.expires_at,
    });
    return true;
  } catch (_) {
    showLinkRefused("The server could not be reached.");
    return false;
  }
}

function showLinkRefused(detail) {
  setChrome(false);
  render("This link cannot be used",
    h("p", {}, "Portal links work once and for a limited time. This one was already used, has expired, was revoked or is not valid."),
    detail ? h("p", { class: "muted" }, detail) : null,
    h("p", {}, "Ask for a new link, or ", h("a", { href: "#/signin" }, "sign in with an API key"), "."));
}

function showSignIn(message) {
  setChrome(false);
  const input = h("input", { id: "api-key", name: "api_key", type: "password", autocomplete: "off", required: true });
  const form = h("form", { class: "stack signin", onsubmit: async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    const check = await fetch("/v3/webhooks/endpoints?limit=1", {
      headers: { Authorization: `Bearer ${token}` }, credentials: "omit", cache: "no-store",
    }).catch(() => null);
    if (!check || !check.ok) {
      showSignIn(check && check.status === 401 ? "That API key was not accepted." : "The server could not be reached.");
      return;
    }
    saveCredential({ kind: "api_key", token, read_only: false });
    if (location.hash === "#/endpoints") route(); else location.hash = "#/endpoints";
  } },
  h("label", { for: "api-key" }, "API key"), input,
  h("button", { type: "submit", class: "primary" }, "Sign in"));
  render("Sign in", message ? h("p", { id: "signin-message" }, message) : null,
    h("p", {}, "Open the link your provider gave you, or sign in with one of your API keys."), form);
}

async function signOut() {
  const credential = loadCredential();
  if (credential?.kind === "session") {
    await fetch("/portal/api/session", {
      method: "DELETE", headers: { Authorization: `Bearer ${credential.token}` }, credentials: "omit",
    }).catch(() => null);
  }
  saveCredential(null);
  location.hash = "#/signin";
  showSignIn("You are signed out.");
}

function setChrome(signedIn) {
  document.getElementById("nav").hidden = !signedIn;
  const who = document.getElementById("who");
  who.replaceChildren();
  if (!signedIn) return;
  const credential = loadCredential();
  if (credential.read_only) who.append(h("span", { class: "badge warn" }, "read-only"));
  if (credential.account_id) who.append(h("span", {}, `Account ${credential.account_id}`));
  who.append(h("button", { type: "button", onclick: signOut }, "Sign out"));
}

// ---------------------------------------------------------------- endpoints

function healthSummary(health) {
  if (!health) return "—";
  if (health.success_rate === null) return h("span", { class: "muted" }, "no attempts in 24 h");
  const pct = Math.round(health.success_rate * 1000) / 10;
  const cls = pct >= 99 ? "good" : pct >= 90 ? "warn" : "bad";
  return h("span", { class: `badge ${cls}` }, `${pct}% ok`);
}

// HeyGen's API has no single-endpoint read: walk the list (100 a page) until it is found.
async function findEndpoint(id) {
  let token = "";
  for (;;) {
    const page = await api("GET", `/v3/webhooks/endpoints?limit=100&token=${encodeURIComponent(token)}`);
    const found = page.data.find((e) => e.endpoint_id === id);
    if (found || !page.has_more) return found || null;
    token = page.next_token;
  }
}

async function endpointsPage(params) {
  const token = params.get("token") || "";
  const page = await api("GET", `/v3/webhooks/endpoints?limit=50&token=${encodeURIComponent(token)}`);
  const endpoints = page.data;
  // One request for the whole page; an endpoint left out had no attempt in 24 hours.
  const counted = endpoints.length
    ? (await api("GET", `/v3/webhooks/endpoint-health?endpoint_ids=${endpoints.map((e) => e.endpoint_id).join(",")}`)).data
    : [];
  const healths = endpoints.map((e) => {
    const found = counted.find((c) => c.endpoint_id === e.endpoint_id);
    return { success_rate: found ? found.success_rate : null };
  });
  const rows = endpoints.map((e, i) => h("tr", {},
    h("td", { class: "url" }, h("a", { href: `#/endpoints/${encodeURIComponent(e.endpoint_id)}` }, e.url)),
    h("td", { class: "optional" }, e.events ? e.events.join(", ") : "all events"),
    h("td", { class: "optional" }, e.entity_id || "—"),
    h("td", {}, badge(e.status)),
    h("td", {}, healthSummary(healths[i]))));
  const table = endpoints.length
    ? h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "URL"), h("th", { scope: "col", class: "optional" }, "Events"),
          h("th", { scope: "col", class: "optional" }, "Entity"), h("th", { scope: "col" }, "Status"),
          h("th", { scope: "col" }, "Last 24 h"))),
        h("tbody", {}, rows)))
    : h("p", { class: "muted" }, "No endpoints yet.");
  render("Endpoints",
    h("div", { class: "actions" }, readOnly() ? null : h("a", { class: "button primary", href: "#/endpoints/new" }, "Add endpoint")),
    table,
    h("div", { class: "actions" },
      token ? h("a", { class: "button", href: "#/endpoints" }, "Newest") : null,
      page.has_more ? h("a", { class: "button", href: `#/endpoints?token=${encodeURIComponent(page.next_token)}` }, "Older") : null));
}

async function endpointForm(existing) {
  const types = await catalog();
  const chosen = new Set(existing?.events || []);
  const url = h("input", { id: "url", name: "url", type: "url", required: true, value: existing?.url || "",
    placeholder: "https://example.com/webhooks", autocomplete: "off" });
  const entity = h("input", { id: "entity_id", name: "entity_id", value: existing?.entity_id || "", autocomplete: "off" });
  const all = h("input", { type: "checkbox", id: "all-events", checked: !existing || !existing.events });
  const boxes = types.map((t) => h("label", {},
    h("input", { type: "checkbox", name: "events", value: t.event_type, checked: chosen.has(t.event_type) }),
    h("span", {}, t.event_type)));
  const typeList = h("div", { class: "types" }, boxes);
  const sync = () => { typeList.hidden = all.checked; };
  all.addEventListener("change", sync);
  sync();
  const form = h("form", { class: "stack" },
    h("label", { for: "url" }, "URL"), url,
    h("fieldset", {}, h("legend", {}, "Events"),
      h("label", {}, all, h("span", {}, "All events, present and future")), typeList),
    existing ? null : h("label", { for: "entity_id" }, "Only events of this entity (optional)"),
    existing ? null : entity,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, existing ? "Save" : "Create endpoint"),
      h("a", { class: "button", href: existing ? `#/endpoints/${encodeURIComponent(existing.endpoint_id)}` : "#/endpoints" }, "Cancel")));
  const read = () => {
    const body = { url: url.value.trim() };
    if (!all.checked) body.events = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    if (!existing && entity.value.trim()) body.entity_id = entity.value.trim();
    return body;
  };
  return { form, read };
}

async function newEndpointPage() {
  const { form, read } = await endpointForm(null);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    guarded(async () => {
      const created = (await api("POST", "/v3/webhooks/endpoints", read())).data;
      showSecretOnce("Endpoint created", created.endpoint_id, created.secret);
    });
  });
  render("Add endpoint", form);
}

// The only page that ever shows a secret: right after create or rotate. Leaving it
// forgets the secret; nothing can show it again.
function showSecretOnce(title, endpointId, secret) {
  render(title,
    h("div", { class: "panel", id: "secret-panel" },
      h("p", {}, h("strong", {}, "Copy this signing secret now."), " It is shown once and never again."),
      h("div", { class: "secret" }, h("code", { id: "secret" }, secret), copyButton(secret))),
    h("a", { class: "button primary", href: `#/endpoints/${encodeURIComponent(endpointId)}` }, "Done"));
}

function healthPanel(health, endpoint) {
  if (!health) return null;
  const hours = health.hours;
  const max = Math.max(1, ...hours.map((x) => x.succeeded + x.failed));
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${hours.length * 10} 60`, preserveAspectRatio: "none", role: "img",
    "aria-label": "Attempts per hour over the last 24 hours: successes and failures" });
  hours.forEach((x, i) => {
    const ok = (x.succeeded / max) * 58;
    const bad = (x.failed / max) * 58;
    chart.append(svg("rect", { class: "ok", x: i * 10 + 1, y: 60 - ok, width: 8, height: ok }));
    chart.append(svg("rect", { class: "bad", x: i * 10 + 1, y: 60 - ok - bad, width: 8, height: bad }));
  });
  let why = null;
  if (endpoint.status === "disabled") {
    why = health.failing_since
      ? `Disabled by hookd: every attempt has failed since ${time(health.failing_since)}.`
      : "Paused by your account. Resume it to receive events again.";
  }
  const total = hours.reduce((n, x) => n + x.succeeded + x.failed, 0);
  return h("section", { class: "panel", "aria-labelledby": "health-title" },
    h("h2", { id: "health-title" }, "Health, last 24 hours"),
    h("dl", { class: "facts" },
      h("dt", {}, "Success rate"), h("dd", { id: "success-rate" },
        health.success_rate === null ? "no attempts" : `${Math.round(health.success_rate * 1000) / 10}% of ${total} attempts`),
      h("dt", {}, "Last success"), h("dd", {}, time(health.last_success_at)),
      h("dt", {}, "Last failure"), h("dd", {}, time(health.last_failure_at)),
      why ? h("dt", {}, "Why disabled") : null, why ? h("dd", {}, why) : null),
    chart,
    h("p", { class: "chart-axis muted", "aria-hidden": "true" }, h("span", {}, "24 hours ago"),
      h("span", {}, "green: delivered · red: failed"), h("span", {}, "now")));
}

async function endpointPage(id) {
  const path = `/v3/webhooks/endpoints/${encodeURIComponent(id)}`;
  const endpoint = await findEndpoint(id);
  if (!endpoint) return render("Endpoint not found", h("p", {}, "No such endpoint in this account."));
  const health = (await api("GET", `${path}/health`)).data;
  const settings = (await api("GET", `${path}/settings`)).data;

  const toggle = endpoint.status === "enabled"
    ? action("Pause", () => guarded(async () => { await api("PATCH", path, { status: "disabled" }); route(); }))
    : action("Resume", () => guarded(async () => { await api("PATCH", path, { status: "enabled" }); route(); }));
  const rotate = action("Rotate secret", () => {
    if (!confirm("Rotate the signing secret? The old one stops signing at once.")) return;
    guarded(async () => {
      const rotated = (await api("POST", `${path}/rotate-secret`)).data;
      showSecretOnce("Secret rotated", id, rotated.secret);
    });
  });
  const remove = action("Delete", () => {
    if (!confirm(`Delete the endpoint ${endpoint.url}? Its pending deliveries are cancelled.`)) return;
    guarded(async () => { await api("DELETE", path); location.hash = "#/endpoints"; say("Endpoint deleted.", true); });
  }, "danger");

  render(endpoint.url,
    h("dl", { class: "facts" },
      h("dt", {}, "Endpoint id"), h("dd", {}, h("code", {}, endpoint.endpoint_id)),
      h("dt", {}, "Status"), h("dd", {}, badge(endpoint.status)),
      h("dt", {}, "Events"), h("dd", {}, endpoint.events ? endpoint.events.join(", ") : "all events"),
      h("dt", {}, "Entity"), h("dd", {}, endpoint.entity_id || "—"),
      h("dt", {}, "Ordering"), h("dd", {}, settings.ordering),
      h("dt", {}, "Rate limit"), h("dd", {}, settings.rate_limit_per_second ? `${settings.rate_limit_per_second}/s` : "none"),
      h("dt", {}, "Created"), h("dd", {}, isoTime(endpoint.created_at))),
    h("div", { class: "actions" },
      readOnly() ? null : h("a", { class: "button", href: `#/endpoints/${encodeURIComponent(id)}/edit` }, "Edit"),
      toggle, rotate, remove,
      h("a", { class: "button", href: `#/log` }, "Message log")),
    healthPanel(health, endpoint),
    readOnly() ? null : await testPanel(path),
    readOnly() ? null : recoverPanel(path));
}

async function editEndpointPage(id) {
  const endpoint = await findEndpoint(id);
  if (!endpoint) return render("Endpoint not found", h("p", {}, "No such endpoint in this account."));
  const { form, read } = await endpointForm(endpoint);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    guarded(async () => {
      const body = read();
      if (!body.events) body.events = null;
      await api("PATCH", `/v3/webhooks/endpoints/${encodeURIComponent(id)}`, body);
      location.hash = `#/endpoints/${encodeURIComponent(id)}`;
      say("Endpoint saved.", true);
    });
  });
  render(`Edit ${endpoint.url}`, form);
}

async function testPanel(path) {
  const types = await catalog();
  const select = h("select", { id: "test-type" }, types.map((t) => h("option", { value: t.event_type }, t.event_type)));
  const result = h("div", { id: "test-result", "aria-live": "polite" });
  const button = h("button", { type: "button", id: "send-test", onclick: () => guarded(async () => {
    button.disabled = true;
    result.replaceChildren(h("p", { class: "muted" }, "Sending…"));
    try {
      const outcome = (await api("POST", `${path}/test`, { event_type: select.value })).data;
      result.replaceChildren(h("dl", { class: "facts" },
        h("dt", {}, "Result"), h("dd", {}, badge(outcome.delivered ? "delivered" : "failed")),
        h("dt", {}, "HTTP status"), h("dd", {}, outcome.status_code ?? "—"),
        h("dt", {}, "Error"), h("dd", {}, outcome.error || "—"),
        h("dt", {}, "Took"), h("dd", {}, `${outcome.duration_ms} ms`),
        h("dt", {}, "Response"), h("dd", {}, h("pre", {}, outcome.response_body || ""))));
    } finally {
      button.disabled = false;
    }
  }) }, "Send test event");
  return h("section", { class: "panel", "aria-labelledby": "test-title" },
    h("h2", { id: "test-title" }, "Send a test event"),
    h("p", { class: "muted" }, "Signed like any delivery; not kept in the message log."),
    h("div", { class: "actions" }, h("label", { for: "test-type" }, "Event type"), select, button), result);
}

function recoverPanel(path) {
  const since = localInput("recover-since", Math.floor(Date.now() / 1000) - 24 * 3600);
  since.required = true;
  const result = h("div", { id: "recover-result", "aria-live": "polite" });
  const window = () => ({ since: Math.floor(new Date(since.value).getTime() / 1000) });
  const check = h("button", { type: "button", id: "recover-check", onclick: () => guarded(async () => {
    const counted = (await api("POST", `${path}/recover`, { ...window(), dry_run: true })).data.deliveries;
    if (counted === 0) {
      result.replaceChildren(h("p", {}, "No delivery failed since then."));
      return;
    }
    const go = h("button", { type: "button", class: "primary", id: "recover-confirm", onclick: () => guarded(async () => {
      const sent = (await api("POST", `${path}/recover`, window())).data.deliveries;
      result.replaceChildren(h("p", {}, `${sent} ${sent === 1 ? "delivery is" : "deliveries are"} being sent again.`));
    }) }, `Resend ${counted}`);
    result.replaceChildren(h("p", { id: "recover-count" },
      `${counted} failed ${counted === 1 ? "delivery" : "deliveries"} since then.`), go);
  }) }, "Count failed deliveries");
  return h("section", { class: "panel", "aria-labelledby": "recover-title" },
    h("h2", { id: "recover-title" }, "Recover after an outage"),
    h("p", { class: "muted" }, "Send again every delivery to this endpoint that failed since a time (at most 30 days)."),
    h("div", { class: "actions" }, h("label", { for: "recover-since" }, "Failed since"), since, check), result);
}

// ---------------------------------------------------------------- message log

// A datetime-local input showing `seconds` (unix) in the browser's time zone.
function localInput(id, seconds) {
  const input = h("input", { id, name: id, type: "datetime-local" });
  if (seconds) {
    const d = new Date(seconds * 1000);
    input.value = new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  }
  return input;
}

async function logPage(params) {
  const types = await catalog();
  const query = new URLSearchParams();
  for (const name of ["event_type", "entity_id", "status", "since", "until", "token"]) {
    if (params.get(name)) query.set(name, params.get(name));
  }
  query.set("limit", "50");
  const page = await api("GET", `/v3/webhooks/event-log?${query}`);

  const typeSelect = h("select", { id: "f-type", name: "event_type" }, h("option", { value: "" }, "any type"),
    types.map((t) => h("option", { value: t.event_type, selected: params.get("event_type") === t.event_type }, t.event_type)));
  const statusSelect = h("select", { id: "f-status", name: "status" }, h("option", { value: "" }, "any status"),
    ["delivered", "pending", "failed"].map((s) => h("option", { value: s, selected: params.get("status") === s }, s)));
  const entity = h("input", { id: "f-entity", name: "entity_id", value: params.get("entity_id") || "", autocomplete: "off" });
  const since = localInput("f-since", Number(params.get("since")) || null);
  const until = localInput("f-until", Number(params.get("until")) || null);
  const form = h("form", { class: "filters", onsubmit: (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    if (typeSelect.value) next.set("event_type", typeSelect.value);
    if (statusSelect.value) next.set("status", statusSelect.value);
    if (entity.value.trim()) next.set("entity_id", entity.value.trim());
    if (since.value) next.set("since", Math.floor(new Date(since.value).getTime() / 1000));
    if (until.value) next.set("until", Math.floor(new Date(until.value).getTime() / 1000));
    location.hash = `#/log?${next}`;
  } },
  h("label", { for: "f-type" }, "Event type", typeSelect),
  h("label", { for: "f-status" }, "Delivery status", statusSelect),
  h("label", { for: "f-entity" }, "Entity id", entity),
  h("label", { for: "f-since" }, "From", since), h("label", { for: "f-until" }, "To", until),
  h("button", { type: "submit", class: "primary" }, "Filter"));

  const summary = (d) => {
    if (d.failed) return badge("failed");
    if (d.pending) return badge("pending");
    if (d.delivered) return badge("delivered");
    return h("span", { class: "muted" }, d.cancelled ? "cancelled" : "no destination");
  };
  const rows = page.data.map((e) => h("tr", {},
    h("td", {}, h("a", { href: `#/events/${encodeURIComponent(e.event_id)}` }, e.event_type)),
    h("td", { class: "optional" }, e.entity_id || "—"),
    h("td", {}, summary(e.deliveries)),
    h("td", { class: "optional" }, `${e.deliveries.delivered}/${e.deliveries.delivered + e.deliveries.pending + e.deliveries.failed}`),
    h("td", {}, time(e.created_at))));
  const older = new URLSearchParams(params);
  older.set("token", page.next_token || "");
  render("Message log", form,
    page.data.length
      ? h("div", { class: "table-wrap" }, h("table", { id: "log" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Event"), h("th", { scope: "col", class: "optional" }, "Entity"),
            h("th", { scope: "col" }, "Status"), h("th", { scope: "col", class: "optional" }, "Delivered"),
            h("th", { scope: "col" }, "Time"))),
          h("tbody", {}, rows)))
      : h("p", { class: "muted" }, "No events match."),
    h("div", { class: "actions" },
      params.get("token") ? h("a", { class: "button", href: "#/log" }, "Newest") : null,
      page.has_more ? h("a", { class: "button", href: `#/log?${older}` }, "Older") : null));
}

// ---------------------------------------------------------------- event detail

async function eventPage(id) {
  const base = `/v3/webhooks/events/${encodeURIComponent(id)}`;
  const event = (await api("GET", base)).data;
  const deliveries = (await api("GET", `${base}/deliveries`)).data;
  const resend = (endpointId) => action("Resend", () => guarded(async () => {
    await api("POST", `${base}/resend`, { endpoint_id: endpointId });
    say("Sent again: a new delivery is on its way.", true);
    route();
  }));
  const sections = deliveries.map((d) => h("section", { class: "panel delivery" },
    h("h2", {}, d.url),
    h("dl", { class: "facts" },
      h("dt", {}, "Status"), h("dd", {}, badge(d.status)),
      h("dt", {}, "Destination"), h("dd", {}, d.endpoint_id ? h("a", { href: `#/endpoints/${encodeURIComponent(d.endpoint_id)}` }, "endpoint") : "callback URL"),
      h("dt", {}, "Next attempt"), h("dd", {}, isoTime(d.next_attempt_at))),
    h("div", { class: "actions" }, d.endpoint_id ? resend(d.endpoint_id) : null),
    d.attempts.length
      ? h("div", { class: "table-wrap" }, h("table", { class: "attempts" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Time"), h("th", { scope: "col" }, "Result"),
            h("th", { scope: "col" }, "Took"), h("th", { scope: "col" }, "Response (first KiB)"))),
          h("tbody", {}, d.attempts.map((a) => h("tr", {},
            h("td", {}, isoTime(a.attempted_at)),
            h("td", { class: "wrap" }, a.status_code ? `HTTP ${a.status_code}` : (a.error || "error")),
            h("td", {}, `${a.duration_ms} ms`),
            h("td", { class: "wrap" }, h("pre", {}, a.response_body || a.error || "")))))))
      : h("p", { class: "muted" }, "No attempt yet.")));
  render(event.event_type,
    h("dl", { class: "facts" },
      h("dt", {}, "Event id"), h("dd", {}, h("code", {}, event.event_id)),
      h("dt", {}, "Entity"), h("dd", {}, event.entity_id || "—"),
      h("dt", {}, "Created"), h("dd", {}, isoTime(event.created_at))),
    h("h2", {}, "Payload"),
    h("pre", { id: "payload" }, JSON.stringify({ event_type: event.event_type, event_data: event.event_data }, null, 2)),
    h("div", { class: "actions" }, deliveries.length ? action("Resend to every destination", () => guarded(async () => {
      await api("POST", `${base}/resend`, null);
      say("Sent again to every destination.", true);
      route();
    })) : null),
    ...sections);
}

// ---------------------------------------------------------------- catalog

async function catalogPage() {
  const types = await catalog();
  const items = types.map((t) => {
    const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    const details = h("details", {}, h("summary", {}, h("code", {}, t.event_type), " — ", t.description), body);
    details.addEventListener("toggle", () => {
      if (!details.open || details.dataset.loaded) return;
      details.dataset.loaded = "1";
      guarded(async () => {
        const example = (await api("GET", `/v3/webhooks/event-types/${encodeURIComponent(t.event_type)}/example`)).data;
        const note = { history: "Your newest event of this type:", sample: "An example of what hookd sends:",
          none: "No event of this type yet. Its event_data is whatever your provider publishes." }[example.source];
        body.replaceChildren(h("p", { class: "muted" }, note),
          example.event_data ? h("pre", {}, JSON.stringify({ event_type: t.event_type, event_data: example.event_data }, null, 2)) : null);
      });
    });
    return details;
  });
  render("Event catalog", h("p", { class: "muted" }, "Every event type an endpoint can subscribe to. Open one for an example payload."), items);
}

// ---------------------------------------------------------------- verifying signatures

function verifyPage() {
  const code = h("pre", { id: "verify-code", tabindex: "0" });
  let language = "Python";
  let scheme = "Standard Webhooks";
  const show = () => {
    code.textContent = EXAMPLES[language][scheme];
    for (const b of tabs.querySelectorAll("button")) {
      b.setAttribute("aria-selected", String(b.dataset.value === language || b.dataset.value === scheme));
    }
  };
  const tab = (value, set) => h("button", { type: "button", "data-value": value, onclick: () => { set(value); show(); } }, value);
  const tabs = h("div", {},
    h("div", { class: "tabs", role: "group", "aria-label": "Language" },
      Object.keys(EXAMPLES).map((l) => tab(l, (v) => { language = v; }))),
    h("div", { class: "tabs", role: "group", "aria-label": "Header" },
      ["Standard Webhooks", "Heygen-Signature"].map((s) => tab(s, (v) => { scheme = v; }))));
  render("Verifying signatures",
    h("p", {}, "Every delivery to an endpoint is signed with its secret, twice: ",
      h("code", {}, "Heygen-Signature"), " (hex HMAC-SHA256 of the body) and the Standard Webhooks headers ",
      h("code", {}, "webhook-id"), ", ", h("code", {}, "webhook-timestamp"), ", ", h("code", {}, "webhook-signature"),
      ", which also cover the time, so a receiver can refuse replays. Verify the raw body, before parsing it."),
    tabs, code,
    h("p", { class: "muted" }, "During a rotation with a grace period, webhook-signature carries a signature for each secret; either may match."));
  show();
}

// ---------------------------------------------------------------- router

async function route() {
  if (!keepNotice) clearNotice();
  keepNotice = false;
  const hash = location.hash.slice(1);
  if (hash.startsWith("pl_")) {
    if (!(await redeemLink(hash))) return;
  }
  const credential = loadCredential();
  const [path, queryString] = location.hash.slice(1).split("?");
  if (path === "/signin" || !credentialLive(credential)) {
    if (credential && !credentialLive(credential)) saveCredential(null);
    return showSignIn(credential ? "Your session has ended." : null);
  }
  setChrome(true);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === (parts[0] === "events" ? "log" : parts[0] || "endpoints")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  await guarded(async () => {
    if (parts[0] === "endpoints" && parts[1] === "new") return newEndpointPage();
    if (parts[0] === "endpoints" && parts[1] && parts[2] === "edit") return editEndpointPage(parts[1]);
    if (parts[0] === "endpoints" && parts[1]) return endpointPage(parts[1]);
    if (parts[0] === "log") return logPage(new URLSearchParams(queryString || ""));
    if (parts[0] === "events" && parts[1]) return eventPage(parts[1]);
    if (parts[0] === "catalog") return catalogPage();
    if (parts[0] === "verify") return verifyPage();
    return endpointsPage(new URLSearchParams(queryString || ""));
  });
}

window.addEventListener("hashchange", route);
route();

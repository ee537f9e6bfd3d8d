// guard's web console. Plain JavaScript, no framework, nothing fetched from elsewhere.
//
// Everything shown comes from requests an agent made, so everything is hostile: it is
// put on the page with textContent only (never innerHTML: the page's Trusted Types
// policy makes any HTML sink throw), control characters, bidirectional overrides and
// invisible characters are shown as visible escapes (\x1b, \u202e), links are never made
// from agent data, and the only HTML an agent wrote (a mail) is shown in a sandboxed frame
// that runs no script and loads nothing.
"use strict";

const API = "/console/api";
const MAX_ROWS = 500;

// --- showing hostile text -------------------------------------------------------------

// The characters guard/textsafe.py escapes: C0 and C1 controls, DEL, soft hyphen, bidi
// and zero-width controls, line separators, BOM, interlinear annotations, lone surrogates.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function escapeOf(ch) {
  const n = ch.charCodeAt(0);
  if (n >= 0xdc80 && n <= 0xdcff) return "\\x" + (n - 0xdc00).toString(16).padStart(2, "0");
  if (n < 0x100) return "\\x" + n.toString(16).padStart(2, "0");
  return "\\u" + n.toString(16).padStart(4, "0");
}

// A fragment showing `value` as text; with `multiline`, newlines and tabs stay as they are.
function text(value, multiline) {
  const s = value === null || value === undefined ? "" : String(value);
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const m of s.matchAll(UNSAFE)) {
    const ch = m[0];
    if (multiline && (ch === "\n" || ch === "\t")) continue;
    if (m.index > last) frag.append(document.createTextNode(s.slice(last, m.index)));
    const esc = document.createElement("span");
    esc.className = "esc";
    esc.textContent = escapeOf(ch);
    frag.append(esc);
    last = m.index + ch.length;
  }
  if (last < s.length) frag.append(document.createTextNode(s.slice(last)));
  return frag;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.dataset[k.slice(5)] = v;
    else node.setAttribute(k, v);  // only fixed attribute names, never from data
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : text(c));
  }
  return node;
}

function td(value, cls) { return el("td", cls ? { class: cls } : {}, text(value)); }

function clock(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return String(iso || "");
  return d.toTimeString().slice(0, 8) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function pretty(value) {
  try { return JSON.stringify(value, null, 2); } catch (e) { return String(value); }
}

async function getJSON(path) {
  const r = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (r.status === 401) { location.assign("/console/login"); throw new Error("logged out"); }
  const data = await r.json();
  if (!r.ok) throw new Error((data.error && data.error.message) || r.statusText);
  return data;
}

function q(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) u.set(k, v);
  const s = u.toString();
  return s ? "?" + s : "";
}

function seg(value) { return encodeURIComponent(String(value)); }

// --- flows ----------------------------------------------------------------------------

const flows = new Map();  // id -> summary
let version = 0;
let stream = null;
let selected = null;

function filters() {
  return {
    sandbox: document.getElementById("f-sandbox").value.trim(),
    host: document.getElementById("f-host").value.trim(),
    rule: document.getElementById("f-rule").value.trim(),
    action: document.getElementById("f-action").value,
  };
}

// The same test as guard/console/flows.py Filters.admit.
function admits(f, flow) {
  return (!f.sandbox || flow.sandbox === f.sandbox) && (!f.action || flow.action === f.action)
    && (!f.host || String(flow.host || "").includes(f.host))
    && (!f.rule || String(flow.rule || "").includes(f.rule));
}

function row(flow) {
  const status = flow.pending ? "…" : (flow.status === null ? "-" : flow.status);
  const tr = el("tr", { "data-id": String(flow.id), class: "action-" + safeClass(flow.action) + (flow.pending ? " pending" : "") },
    td(clock(flow.time)), td(flow.sandbox, "sandbox"), td(flow.method),
    td(flow.url, "url"), td(flow.action), td(flow.rule, "rule"), td(status),
    td(flow.duration_ms === null || flow.pending ? "" : Number(flow.duration_ms).toFixed(1)),
    td(flow.changes ? String(flow.changes) : ""));
  tr.addEventListener("click", () => openFlow(flow.id));
  if (selected === flow.id) tr.classList.add("selected");
  return tr;
}

function safeClass(action) {
  return ["simulate", "block", "allow", "error"].includes(action) ? action : "other";
}

function place(flow) {
  const body = document.querySelector("#flows tbody");
  const old = body.querySelector(`tr[data-id="${Number(flow.id)}"]`);
  if (!admits(filters(), flow)) { if (old) old.remove(); return; }
  const fresh = row(flow);
  if (old) { old.replaceWith(fresh); return; }
  // newest first: find the first row with a smaller id
  let before = null;
  for (const tr of body.children) { if (Number(tr.dataset.id) < flow.id) { before = tr; break; } }
  body.insertBefore(fresh, before);
  while (body.children.length > MAX_ROWS) body.lastElementChild.remove();
}

function emptyNote() {
  document.getElementById("flows-empty").hidden = document.querySelector("#flows tbody").children.length > 0;
}

async function loadFlows() {
  const data = await getJSON(API + "/flows" + q({ ...filters(), limit: MAX_ROWS }));
  version = data.version;
  const body = document.querySelector("#flows tbody");
  body.replaceChildren();
  for (const f of data.flows) flows.set(f.id, f);
  for (const f of data.flows.slice().reverse()) place(f);
  emptyNote();
  listen();
}

function listen() {
  if (stream) stream.close();
  stream = new EventSource(API + "/stream?after=" + version);
  const live = document.getElementById("live");
  stream.onopen = () => { live.textContent = "live"; live.className = "on"; };
  stream.onerror = () => { live.textContent = "reconnecting"; live.className = "off"; };
  stream.addEventListener("flows", (e) => {
    const data = JSON.parse(e.data);
    version = data.version;
    for (const f of data.flows) { flows.set(f.id, f); place(f); }
    while (flows.size > MAX_ROWS * 2) flows.delete(flows.keys().next().value);
    emptyNote();
    if (selected !== null && data.flows.some((f) => f.id === selected)) openFlow(selected);
  });
  stream.addEventListener("reset", () => { loadFlows(); });
}

function section(title, ...content) {
  return el("section", {}, el("h3", {}, title), ...content);
}

function headerTable(headers) {
  const t = el("table", { class: "headers" });
  for (const pair of headers || []) t.append(el("tr", {}, td(pair[0], "name"), td(pair[1])));
  return t;
}

function bodyView(body) {
  if (!body) return el("p", { class: "muted" }, "no body");
  if (body.streamed) return el("p", { class: "muted" }, "streamed to the client, not kept");
  const notes = [];
  if (body.size !== undefined) notes.push(body.size + " bytes");
  if (body.truncated) notes.push("cut here (the audit log has " + (body.hmac ? "its digest" : "the rest") + ")");
  if (body.redacted) notes.push("secrets redacted");
  let shown = body.text;
  if (shown === undefined && body.base64 !== undefined) { notes.push("binary, base64"); shown = body.base64; }
  if (shown !== undefined && /^\s*[\[{]/.test(shown) && !body.truncated) {
    try { shown = JSON.stringify(JSON.parse(shown), null, 2); } catch (e) { /* as sent */ }
  }
  return el("div", {}, el("p", { class: "muted" }, notes.join(", ")),
    el("pre", { class: "body" }, text(shown, true)));
}

function changesView(changes) {
  if (!changes || !changes.length) return el("p", { class: "muted" }, "no world changes");
  const list = el("div", { class: "changes" });
  for (const c of changes) {
    list.append(el("details", {}, el("summary", {}, text(`${c.op} ${c.collection} ${c.id}`)),
      el("pre", {}, text(pretty(c.object), true))));
  }
  return list;
}

async function openFlow(id) {
  selected = id;
  for (const tr of document.querySelectorAll("#flows tbody tr")) tr.classList.toggle("selected", Number(tr.dataset.id) === id);
  const pane = document.getElementById("detail");
  let flow;
  try { flow = await getJSON(API + "/flows/" + Number(id)); } catch (e) {
    pane.hidden = false; pane.replaceChildren(el("p", { class: "error" }, e.message)); return;
  }
  if (selected !== id) return;
  const req = flow.request || {};
  const resp = flow.response || {};
  const facts = el("dl", { class: "facts" });
  for (const [k, v] of [["action", flow.action], ["rule", flow.rule], ["reason", flow.reason],
    ["sandbox", flow.sandbox], ["policy", flow.policy], ["client", flow.client],
    ["status", flow.pending ? "pending" : flow.status], ["duration", flow.duration_ms + " ms"],
    ["upstream", flow.upstream ? "yes" : "no"], ["error", flow.error], ["audit seq", flow.seq],
    ["worker", flow.worker]]) {
    if (v === undefined || v === null || v === "") continue;
    facts.append(el("dt", {}, k), el("dd", {}, text(v)));
  }
  pane.hidden = false;
  pane.replaceChildren(
    el("button", { class: "close", type: "button", id: "detail-close" }, "close"),
    el("h2", {}, el("span", { class: "method" }, text(flow.method)), " ", el("span", { class: "url" }, text(flow.url))),
    facts,
    section("Request headers", headerTable(req.headers)),
    section("Request body", bodyView(req.body)),
    section("Response headers", headerTable(resp.headers)),
    section("Response body", bodyView(resp.body)),
    section("World changes", changesView(flow.changes)),
  );
  document.getElementById("detail-close").addEventListener("click", () => { selected = null; pane.hidden = true; });
}

// --- sandboxes, worlds, outbox ----------------------------------------------------------

async function loadSandboxes() {
  const data = await getJSON(API + "/sandboxes");
  const body = document.querySelector("#sandboxes tbody");
  body.replaceChildren();
  for (const s of data.sandboxes) {
    const tr = el("tr", { "data-sandbox": s.sandbox },
      td(s.sandbox, "sandbox"), td(s.policy || (s.registered ? "default" : "-")),
      td(String(s.objects)), td(String(s.events)),
      td(s.last_activity ? new Date(s.last_activity * 1000).toLocaleTimeString() : ""));
    tr.addEventListener("click", () => openWorld(s.sandbox));
    body.append(tr);
  }
  document.getElementById("sandboxes-empty").hidden = data.sandboxes.length > 0;
}

async function openWorld(name) {
  const pane = document.getElementById("world");
  const info = await getJSON(API + "/sandboxes/" + seg(name));
  const colls = el("ul", { class: "collections" });
  for (const [coll, n] of Object.entries(info.counts).sort()) {
    const b = el("button", { type: "button", class: "link", "data-collection": coll }, text(`${coll} (${n})`));
    b.addEventListener("click", () => openCollection(name, coll, null, true));
    colls.append(el("li", {}, b));
  }
  const outbox = el("button", { type: "button", id: "open-outbox" }, "Outbox");
  outbox.addEventListener("click", () => openOutbox(name));
  pane.hidden = false;
  pane.replaceChildren(el("h2", {}, text(name)),
    el("p", { class: "muted" }, text(`world version ${info.version}, ${info.events} events`)),
    outbox, el("h3", {}, "Collections"), colls, el("div", { id: "objects" }));
}

async function openCollection(name, coll, after, fresh) {
  const data = await getJSON(API + "/sandboxes/" + seg(name) + "/collections/" + seg(coll) + q({ after }));
  const box = document.getElementById("objects");
  if (fresh) box.replaceChildren(el("h3", {}, text(coll)));
  for (const obj of data.objects) {
    box.append(el("details", { class: "object" }, el("summary", {}, text(obj.id)), el("pre", {}, text(pretty(obj), true))));
  }
  if (data.next) {
    const more = el("button", { type: "button", class: "more" }, "more");
    more.addEventListener("click", () => { more.remove(); openCollection(name, coll, data.next, false); });
    box.append(more);
  }
}

async function openOutbox(name, after) {
  const data = await getJSON(API + "/sandboxes/" + seg(name) + "/outbox" + q({ after }));
  const box = document.getElementById("objects");
  if (!after) box.replaceChildren(el("h3", {}, "Outbox"));
  if (!data.objects.length && !after) box.append(el("p", { class: "muted" }, "nothing sent"));
  for (const m of data.objects) {
    const item = el("article", { class: "mail", "data-message": String(m.id) },
      el("h4", {}, text(m.subject || "(no subject)")),
      el("dl", { class: "facts" },
        el("dt", {}, "from"), el("dd", {}, text(m.from)),
        el("dt", {}, "to"), el("dd", {}, text((m.to || []).join(", "))),
        el("dt", {}, "via"), el("dd", {}, text(`${m.provider} ${m.kind} (${m.rule})`)),
        el("dt", {}, "time"), el("dd", {}, text(m.time))));
    if (m.text) item.append(el("pre", { class: "body" }, text(m.text, true)));
    if (typeof m.html === "string") {
      const show = el("button", { type: "button", class: "show-html" }, "show HTML");
      show.addEventListener("click", () => {
        const frame = document.createElement("iframe");
        frame.setAttribute("sandbox", "");  // no scripts, no same origin, no forms, no popups
        frame.setAttribute("referrerpolicy", "no-referrer");
        frame.setAttribute("title", "mail body");
        frame.className = "mail-frame";
        frame.src = "/console/mail/" + seg(name) + "/" + seg(m.id);
        show.replaceWith(frame);
      });
      item.append(show);
    }
    box.append(item);
  }
  if (data.next) {
    const more = el("button", { type: "button", class: "more" }, "more");
    more.addEventListener("click", () => { more.remove(); openOutbox(name, data.next); });
    box.append(more);
  }
}

// --- rules --------------------------------------------------------------------------------

let ruleData = null;

async function loadRules() {
  ruleData = await getJSON(API + "/rules");
  const un = document.querySelector("#unmatched tbody");
  un.replaceChildren();
  for (const u of ruleData.unmatched) {
    un.append(el("tr", {}, td(String(u.count)), td(u.method), td(u.host), td(u.path, "url"),
      td(u.sandboxes.join(", ")), td(clock(u.last))));
  }
  if (!ruleData.unmatched.length) un.append(el("tr", {}, el("td", { colspan: "6", class: "muted" }, "none")));
  const own = document.querySelector("#own-rules tbody");
  own.replaceChildren();
  for (const r of ruleData.other) own.append(el("tr", {}, td(String(r.hits)), td(r.id, "rule"), td(clock(r.last))));
  showRules();
}

function showRules() {
  if (!ruleData) return;
  const find = document.getElementById("rules-find").value.trim();
  const body = document.querySelector("#rules tbody");
  body.replaceChildren();
  const shown = ruleData.rules.filter((r) => !find || r.id.includes(find) || r.hosts.join(" ").includes(find))
    .sort((a, b) => b.hits - a.hits).slice(0, 1000);
  for (const r of shown) {
    body.append(el("tr", { "data-rule": r.id }, td(String(r.hits)), td(r.id, "rule"), td(r.action),
      td(r.hosts.join(" ")), td(r.methods ? r.methods.join(" ") : "any"), td(r.paths.join(" "), "url"),
      td(r.source, "source"), td(r.last ? clock(r.last) : "")));
  }
}

// --- tabs -------------------------------------------------------------------------------

function route() {
  const tab = ["flows", "sandboxes", "rules"].includes(location.hash.slice(1)) ? location.hash.slice(1) : "flows";
  for (const name of ["flows", "sandboxes", "rules"]) {
    document.getElementById("view-" + name).hidden = name !== tab;
    document.getElementById("tab-" + name).classList.toggle("active", name === tab);
  }
  const load = { flows: () => null, sandboxes: loadSandboxes, rules: loadRules }[tab];
  Promise.resolve(load()).catch((e) => console.error(e));
}

function debounce(fn, ms) {
  let t = null;
  return () => { clearTimeout(t); t = setTimeout(fn, ms); };
}

document.addEventListener("DOMContentLoaded", () => {
  const refilter = debounce(() => loadFlows().catch((e) => console.error(e)), 250);
  const form = document.getElementById("filters");
  form.addEventListener("input", refilter);
  form.addEventListener("reset", () => setTimeout(refilter, 0));
  form.addEventListener("submit", (e) => { e.preventDefault(); refilter(); });
  document.getElementById("rules-find").addEventListener("input", showRules);
  window.addEventListener("hashchange", route);
  for (const name of ["flows", "sandboxes", "rules"]) {  // the open tab's link refreshes it
    document.getElementById("tab-" + name).addEventListener("click", () => {
      if (location.hash === "#" + name) route();
    });
  }
  route();
  loadFlows().catch((e) => console.error(e));
});

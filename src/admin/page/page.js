// regdns status page: every 2 s swaps in the rows the server renders (GET /status/fragments:
// HTML from the same Rust code that fills the page without scripts, escaped there) and sends
// actions to the same API the CLI uses. The token stays in this tab's sessionStorage.
"use strict";
const $ = (s, r) => (r || document).querySelector(s);
const store = window.sessionStorage;
let timer = 0, busy = false;

function note(text, cls) { const n = $("#note"); n.textContent = text; n.className = cls || ""; }
function token() { return store.getItem("regdns-token") || ""; }
function showToken() { $("#token").placeholder = token() ? "saved in this tab (not shown)" : "contents of admin_token_file"; }

async function api(method, path, body) {
  const h = {};
  if (token()) h.Authorization = "Bearer " + token();
  if (body) h["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers: h, body: body ? JSON.stringify(body) : undefined, cache: "no-store" });
  let j = null;
  try { j = await r.json(); } catch (e) { j = null; }
  return { status: r.status, json: j };
}

function options(sel, values, keepFirst) {
  const key = values.join("\n");
  if (sel.dataset.v === key) return;
  sel.dataset.v = key;
  const cur = sel.value;
  sel.replaceChildren(...(keepFirst ? [sel.options[0]] : []), ...values.map((v) => new Option(v, v)));
  if ([...sel.options].some((o) => o.value === cur)) sel.value = cur;
}

function render(f) {
  $("#meta").textContent = `${f.meta} · updated ${new Date().toLocaleTimeString()}`;
  $("#endpoints tbody").innerHTML = f.endpoints;
  $("#instances tbody").innerHTML = f.instances;
  $("#view-health tbody").innerHTML = f.view_health;
  $("#overrides tbody").innerHTML = f.overrides;
  if (f.events != null) $("#event-list").innerHTML = f.events;
  $("#cluster").hidden = !f.cluster;
  if (f.cluster) {
    $("#cluster-state").innerHTML = f.cluster.state;
    $("#cluster-nodes thead").innerHTML = f.cluster.head;
    $("#cluster-nodes tbody").innerHTML = f.cluster.nodes;
  }
  const c = f.choices;
  document.querySelectorAll("select[name=endpoint]").forEach((x) => options(x, c.endpoints));
  document.querySelectorAll("select[name=view]").forEach((x) => options(x, c.views, true));
  document.querySelectorAll("select.inst").forEach((x) => options(x, c.instances));
  options($("#f-release select[name=id]"), c.overrides);
}

async function poll() {
  clearTimeout(timer);
  if (busy) return;
  busy = true;
  try {
    const s = await api("GET", "/status/fragments");
    if (s.status === 200) {
      render(s.json);
      if ($("#note").dataset.kind !== "action") note("");
    } else if (s.status === 401) {
      note(token() ? "The token was refused: " + (s.json && s.json.message) : "The data needs the admin token: enter it above (it is kept in this tab only).", "err");
      $("#note").dataset.kind = "";
    } else {
      note("regdns answered " + s.status + ": " + ((s.json && s.json.message) || ""), "err");
    }
  } catch (err) {
    note("Cannot reach regdns (" + err + "); retrying.", "err");
  }
  busy = false;
  timer = setTimeout(poll, 2000);
}

function ask(text) {
  const d = $("#confirm");
  $("#confirm-text").textContent = text;
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
    d.returnValue = "";
    d.showModal();
  });
}

async function act(form) {
  const f = Object.fromEntries(new FormData(form));
  const reason = (f.reason || "").trim();
  const actor = (store.getItem("regdns-actor") || "").trim() || "status page";
  if (!reason) { note("Give a reason: it is journaled.", "err"); return; }
  const dur = (f.for || "").trim() || undefined;
  let req, text;
  switch (form.dataset.action) {
    case "force":
      req = ["POST", "/overrides", { type: "force", endpoint: f.endpoint, view: f.view || undefined, instance: f.instance, for: dur, reason, actor }];
      text = `Force ${f.endpoint} (${f.view || "every view"}) to ${f.instance}${dur ? " for " + dur : " until released"}?`;
      break;
    case "drain":
      req = ["POST", "/overrides", { type: "drain", instance: f.instance, for: dur, reason, actor }];
      text = `Drain ${f.instance}${dur ? " for " + dur : " until released"}?`;
      break;
    case "release":
      req = ["DELETE", `/overrides/${encodeURIComponent(f.id)}?actor=${encodeURIComponent(actor)}&reason=${encodeURIComponent(reason)}`];
      text = `Release override ${f.id}?`;
      break;
    default:
      req = ["POST", "/failback", { endpoint: f.endpoint, view: f.view || undefined, reason, actor }];
      text = `Fail ${f.endpoint} (${f.view || "every pending view"}) back now?`;
  }
  if (!(await ask(text + ` Reason: "${reason}", as ${actor}.`))) return;
  const r = await api(...req);
  $("#note").dataset.kind = "action";
  if (r.status >= 200 && r.status < 300) {
    note("Done: " + text.replace(/\?$/, "") + ".", "ok");
    form.reset();
  } else {
    note(`Refused (${r.status}): ${(r.json && r.json.message) || "no message"}`, "err");
  }
  poll();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#auth").hidden = false;
  $("#actions").hidden = false;
  $("#actor").value = store.getItem("regdns-actor") || "";
  $("#auth").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("#token").value.trim();
    if (t) store.setItem("regdns-token", t);
    store.setItem("regdns-actor", $("#actor").value.trim());
    $("#token").value = "";
    $("#note").dataset.kind = "";
    showToken();
    poll();
  });
  $("#forget").addEventListener("click", () => { store.removeItem("regdns-token"); showToken(); poll(); });
  showToken();
  document.querySelectorAll("#actions form").forEach((f) => f.addEventListener("submit", (ev) => { ev.preventDefault(); act(f); }));
  poll();
});

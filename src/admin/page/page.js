// regdns status page: polls the admin API (GET /status, /status/history, /events) and sends
// actions to the same API the CLI uses. The token stays in this tab's sessionStorage.
"use strict";
const $ = (s, r) => (r || document).querySelector(s);
const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
const store = window.sessionStorage;
let last = null, timer = 0, busy = false;

function ago(ms, now) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 120 ? s + " s ago" : s < 7200 ? Math.round(s / 60) + " min ago" : Math.round(s / 3600) + " h ago";
}
const iso = (ms) => new Date(ms).toISOString();
const when = (ms, now) => `<time datetime="${iso(ms)}" title="${iso(ms)}">${ago(ms, now)}</time>`;
const td = (label, html, cls) => `<td data-label="${label}"${cls ? ` class="${cls}"` : ""}>${html}</td>`;
const mark = (cls, text) => `<span class="mark ${cls}">${esc(text)}</span>`;
const ms = (x) => (x < 10 ? x.toFixed(1) : Math.round(x)) + " ms";

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

function endpointRow(e, now) {
  let m = "";
  if (e.degraded) m += mark("bad", "degraded: no target up");
  if (e.failback_pending) m += mark("warn", "failback pending → " + e.failback_pending);
  if (e.forced_by) m += mark("info", "forced by " + e.forced_by);
  return `<tr data-endpoint="${esc(e.endpoint)}" data-view="${esc(e.view)}">` + td("Endpoint", esc(e.endpoint)) +
    td("View", esc(e.view)) + td("Active", esc(e.active), "active") + td("Answer", `<code>${esc(e.answer)}</code>`, "answer") +
    td("Reason", esc(e.reason), "reason") + td("Since", when(e.since_ms, now)) + td("Marks", m, "marks") + "</tr>";
}

function chart(h, now) {
  const bms = 60000, end = now - (now % bms);
  let r = "";
  for (const b of (h && h.buckets) || []) {
    const i = 59 - Math.round((end - b.start_ms) / bms);
    if (i < 0 || i > 59) continue;
    const cls = b.failed === b.probes ? "fail" : b.failed ? "some" : "ok";
    const ht = cls === "fail" ? 28 : 4 + Math.round(24 * Math.min(1, Math.log10(1 + b.max_latency_ms) / 3.3));
    r += `<rect class="${cls}" x="${i * 4}" y="${28 - ht}" width="3" height="${ht}"><title>${iso(b.start_ms).slice(11, 16)}Z: ${b.probes} probes, ${b.failed} failed, slowest ${ms(b.max_latency_ms)}</title></rect>`;
  }
  return `<svg class="chart" viewBox="0 0 240 28" preserveAspectRatio="none" role="img" aria-label="probes over the last hour">${r}</svg>`;
}

function instanceRow(i, h, now) {
  let st = `<span class="st ${esc(i.state)}">${esc(i.state)}</span>`;
  if (i.since_ms) st += " " + when(i.since_ms, now);
  if (i.drained) st += " " + mark("warn", "drained");
  if (i.reason) st += `<br><span class="reason">${esc(i.reason)}</span>`;
  if (i.canary_digest) {
    const lag = i.replication_reference === i.id ? "replication reference" : i.replication_lag_ms == null ? "" :
      i.replication_lag_ms === 0 ? "in sync with " + i.replication_reference : "behind " + i.replication_reference + " for " + Math.round(i.replication_lag_ms / 1000) + " s";
    st += `<br><span class="mute" title="${esc(i.canary_digest)}">canary ${esc(i.canary_digest.slice(0, 19))}… ${esc(lag)}</span>`;
    if (i.replication_behind) st += " " + mark("bad", "behind: not eligible");
  }
  const checks = i.checks.map((c) => `<li class="${c.ok ? "ok" : "fail"}">${esc(c.check)} ${c.ok ? "ok" : "FAIL"} ${ms(c.latency_ms)} <span class="mute">${esc(c.detail)}</span></li>`).join("");
  const rec = ((h && h.recent) || []).map((s) => `<b class="${s.ok ? "ok" : "fail"}" title="${iso(s.at_ms)} ${ms(s.latency_ms)} ${esc(s.error || "ok")}">${s.ok ? "●" : "✕"}</b>`).join("");
  return `<tr data-instance="${esc(i.id)}">` + td("Instance", esc(i.id)) + td("State", st, "state") +
    td("Last checks", `<ul class="checks">${checks}</ul>${rec ? `<span class="recent">${rec}</span>` : ""}`) +
    td("Last hour", chart(h, now)) + "</tr>";
}

function what(k) {
  if (k.Force) return `force ${esc(k.Force.endpoint)} ${k.Force.view ? "view " + esc(k.Force.view) : "every view"} → ${esc(k.Force.instance)}`;
  if (k.Drain) return `drain ${esc(k.Drain.instance)}`;
  return esc(JSON.stringify(k));
}

function overrideRow(o, now) {
  const exp = o.expires ? `<time datetime="${iso(o.expires)}">${iso(o.expires)}</time>` : "until released";
  return `<tr data-override="${esc(o.id)}">` + td("Id", `<code>${esc(o.id)}</code>`) + td("What", what(o.kind)) +
    td("Who", esc(o.actor)) + td("Why", esc(o.reason)) + td("Expires", exp) + "</tr>";
}

function eventItem(e, now) {
  const where = [e.endpoint, e.view].filter(Boolean).map(esc).join(" ");
  const move = e.from || e.to ? ` ${esc(e.from || "")} → ${esc(e.to || "")}` : "";
  return `<li>${when(e.time_ms, now)}${e.node ? ` <span class="mute">[${esc(e.node)}]</span>` : ""} <b>${esc(e.kind)}</b> ${where}${move}${e.instance ? " " + esc(e.instance) : ""}` +
    `${e.override_id ? " " + esc(e.override_id) : ""} <span class="mute">by ${esc(e.actor)}: ${esc(e.reason)}</span></li>`;
}

// [cluster]: the state (ok/degraded), the leader and every node's view of every instance.
function renderCluster(c, ids) {
  $("#cluster").hidden = !c;
  if (!c) return;
  $("#cluster-state").innerHTML = `<b class="${c.state === "ok" ? "" : "bad"}">cluster: ${esc(c.state)}</b> · this node ${esc(c.node)} · leader ${esc(c.leader || "none")}` +
    ` · health_quorum ${esc(c.health_quorum)}${c.error ? ` · <span class="bad">${esc(c.error)}</span>` : ""}`;
  $("#cluster-nodes thead").innerHTML = "<tr><th>Node</th>" + ids.map((i) => `<th>${esc(i)}</th>`).join("") + "</tr>";
  $("#cluster-nodes tbody").innerHTML = c.nodes.map((n) => `<tr data-node="${esc(n.node)}">` +
    td("Node", esc(n.node) + (n.node === c.leader ? " (leader)" : "")) +
    ids.map((i) => td(i, esc(n.instances[i] || "-"))).join("") + "</tr>").join("");
}

function options(sel, values, keepFirst) {
  const key = values.join("\n");
  if (sel.dataset.v === key) return;
  sel.dataset.v = key;
  const cur = sel.value;
  const first = keepFirst ? sel.options[0].outerHTML : "";
  sel.innerHTML = first + values.map((v) => `<option value="${esc(v)}">${esc(v)}</option>`).join("");
  if ([...sel.options].some((o) => o.value === cur)) sel.value = cur;
}

function render(s, hist, ev) {
  const now = hist ? hist.now_ms : Date.now();
  const byId = {};
  for (const h of (hist && hist.instances) || []) byId[h.id] = h;
  $("#meta").textContent = `version ${s.version} · generation ${s.generation} · updated ${new Date().toLocaleTimeString()}`;
  $("#endpoints tbody").innerHTML = s.endpoints.map((e) => endpointRow(e, now)).join("");
  $("#instances tbody").innerHTML = s.instances.map((i) => instanceRow(i, byId[i.id], now)).join("");
  $("#overrides tbody").innerHTML = s.overrides.length ? s.overrides.map((o) => overrideRow(o, now)).join("") : `<tr><td colspan="5" class="mute">none</td></tr>`;
  renderCluster(s.cluster, s.instances.map((i) => i.id));
  if (ev) $("#event-list").innerHTML = ev.events.slice(-20).reverse().map((e) => eventItem(e, now)).join("") || `<li class="mute">none in the last hour</li>`;
  const eps = [...new Set(s.endpoints.map((e) => e.endpoint))], views = [...new Set(s.endpoints.map((e) => e.view))];
  const inst = s.instances.map((i) => i.id);
  document.querySelectorAll("select[name=endpoint]").forEach((x) => options(x, eps));
  document.querySelectorAll("select[name=view]").forEach((x) => options(x, views, true));
  document.querySelectorAll("select.inst").forEach((x) => options(x, inst));
  options($("#f-release select[name=id]"), s.overrides.map((o) => o.id));
}

async function poll() {
  clearTimeout(timer);
  if (busy) return;
  busy = true;
  try {
    const [s, h, e] = await Promise.all([api("GET", "/status"), api("GET", "/status/history"), api("GET", "/events?since=1h&limit=20")]);
    if (s.status === 200) {
      render(s.json, h.status === 200 ? h.json : null, e.status === 200 ? e.json : null);
      last = s.json;
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

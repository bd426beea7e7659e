// The explorer: a company's state as of a date, as the ledger stood at a moment, from the API.
// Everything shown comes from the JSON answers; nothing is computed here but the drawing.
"use strict";

const TOKEN_KEY = "ledger-explorer-token";
const $ = (id) => document.getElementById(id);
// Kept for this tab only (it survives a reload): a page of another origin-mate cannot find it
// in localStorage, and closing the tab forgets it.
let token = sessionStorage.getItem(TOKEN_KEY);
let streamEvents = [];

class Problem extends Error {}

async function api(path) {
  const answer = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (answer.status === 401 || answer.status === 403) {
    askForToken(answer.status === 401 ? "That token is not valid (or was revoked)." : "That token lacks the events:read scope.");
    throw new Problem("no valid token");
  }
  let body;
  try {
    body = await answer.json();
  } catch {
    throw new Problem(`HTTP ${answer.status}: the answer was not JSON`);
  }
  if (!answer.ok) throw new Problem(body.detail || body.title || `HTTP ${answer.status}`);
  return body;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

// Exact decimal strings, grouped for reading: "2500000000" -> "2,500,000,000".
function grouped(value) {
  const [whole, fraction] = String(value).split(".");
  const digits = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return fraction ? `${digits}.${fraction}` : digits;
}

function money(m) {
  return m ? `${m.currency} ${grouped(m.value)}` : "undisclosed";
}

function short(value) {
  const n = Number(value);
  if (n >= 1e9) return `${(n / 1e9).toFixed(n % 1e9 ? 2 : 0)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(0)}M`;
  return grouped(value);
}

function today() {
  return new Date().toISOString().slice(0, 10);
}

function askForToken(message) {
  $("explorer").hidden = true;
  $("forget-token").hidden = true;
  $("token-form").hidden = false;
  $("token-error").textContent = message || "";
  $("token").focus();
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  return { company: params.get("company"), asOf: params.get("as_of"), knownAt: params.get("known_at") };
}

function writeHash() {
  const params = new URLSearchParams({ company: $("company").value, as_of: $("as-of").value });
  if ($("known-at").value) params.set("known_at", $("known-at").value);
  history.replaceState(null, "", `#${params}`);
}

async function loadCompanies() {
  const select = $("company");
  select.replaceChildren();
  let after = null;
  do {
    const page = await api(`/companies?limit=200${after ? `&after=${encodeURIComponent(after)}` : ""}`);
    for (const c of page.companies) {
      const option = el("option", `${c.name || c.company_id} (${c.company_id})`);
      option.value = c.company_id;
      select.append(option);
    }
    after = page.next_after;
  } while (after);
}

async function loadStream(companyId) {
  streamEvents = [];
  let after = 0;
  for (;;) {
    const page = await api(`/streams/${encodeURIComponent(`company:${companyId}`)}/events?after_version=${after}&limit=1000`);
    streamEvents.push(...page.events);
    if (page.next_after_version === null) break;
    after = page.next_after_version;
  }
  const select = $("known-at");
  const chosen = select.value;
  select.replaceChildren(el("option", "now (everything recorded)"));
  select.firstChild.value = "";
  for (const e of streamEvents) {
    const option = el("option", `after #${e.position} ${e.type.replaceAll("_", " ")} (recorded ${e.recorded_at})`);
    option.value = e.recorded_at;
    select.append(option);
  }
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

function query() {
  const params = new URLSearchParams({ as_of: $("as-of").value });
  if ($("known-at").value) params.set("known_at", $("known-at").value);
  return params;
}

async function refresh() {
  $("problem").textContent = "";
  const id = $("company").value;
  if (!id || !$("as-of").value) return;
  writeHash();
  const knownAt = $("known-at").value;
  const known = knownAt ? `?known_at=${encodeURIComponent(knownAt)}` : "";
  try {
    const [state, valuations] = await Promise.all([
      api(`/companies/${encodeURIComponent(id)}?${query()}`),
      api(`/companies/${encodeURIComponent(id)}/valuations${known}`),
    ]);
    showState(state);
    drawChart(valuations.valuations, $("as-of").value);
    showTimeline(knownAt);
  } catch (error) {
    if (error instanceof Problem) {
      $("problem").textContent = error.message;
      clearState();
    } else {
      throw error;
    }
  }
}

function clearState() {
  $("company-name").textContent = "not known at that point";
  for (const id of ["jurisdiction", "valuation", "total-raised", "investors", "approvals", "answered"]) $(id).textContent = "–";
  $("rounds").tBodies[0].replaceChildren();
  $("rules").replaceChildren();
  $("chart").replaceChildren();
}

function showState(s) {
  $("company-name").textContent = s.legal_name ? `${s.name} · ${s.legal_name}` : s.name;
  $("jurisdiction").textContent = s.jurisdiction;
  $("valuation").textContent = s.valuation ? `${money(s.valuation)} (effective ${s.valuation.effective_date}${s.valuation.basis ? `, ${s.valuation.basis}` : ""})` : "none reported";
  $("total-raised").textContent = `USD ${grouped(s.total_raised_usd)}`;
  $("investors").textContent = s.investors.length ? s.investors.join(", ") : "none";
  $("approvals").textContent = s.approvals.length
    ? s.approvals.map((a) => `${a.status} by ${a.authority} (${a.jurisdiction}): ${a.scope}${a.product ? `, ${a.product}` : ""} since ${a.effective_date}`).join("; ")
    : "none";
  $("answered").textContent = `as of ${s.as_of}, as known at ${s.known_at} (position ${s.position})`;
  const rows = s.rounds.map((r) => {
    const tr = el("tr");
    tr.append(el("td", r.effective_date), el("td", r.round_name), el("td", money(r.amount)),
      el("td", r.amount_usd ? grouped(r.amount_usd) : "–"),
      el("td", r.investors.map((i) => i.name || i.investor_id).join(", ")));
    return tr;
  });
  $("rounds").tBodies[0].replaceChildren(...rows);
  const rules = s.export_restrictions.map((r) => {
    const li = el("li");
    li.append(el("strong", r.title), el("span", ` (${r.authority}, since ${r.effective_date}; applies by ${r.reason}): ${r.restricted_items.join(", ")}`));
    li.dataset.ruleId = r.rule_id;
    return li;
  });
  $("rules").replaceChildren(...(rules.length ? rules : [el("li", "none in force")]));
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// A step chart: a valuation holds from its effective date until the next one.
function drawChart(valuations, asOf) {
  const chart = $("chart");
  chart.replaceChildren();
  const [W, H, left, right, top, bottom] = [720, 240, 64, 24, 16, 32];
  if (!valuations.length) {
    chart.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no valuation reported"));
    return;
  }
  const day = (d) => Date.parse(`${d}T00:00:00Z`);
  const points = valuations.map((v) => ({ t: day(v.effective_date), v: Number(v.value), label: `${v.currency} ${short(v.value)}`, date: v.effective_date }));
  const t0 = Math.min(points[0].t, day(asOf)) - 20 * 864e5;
  const t1 = Math.max(points[points.length - 1].t, day(asOf)) + 20 * 864e5;
  const vmax = Math.max(...points.map((p) => p.v)) * 1.15;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (W - left - right);
  const y = (v) => H - bottom - (v / vmax) * (H - top - bottom);
  chart.append(svg("line", { x1: left, y1: H - bottom, x2: W - right, y2: H - bottom, class: "axis" }));
  chart.append(svg("line", { x1: left, y1: top, x2: left, y2: H - bottom, class: "axis" }));
  for (const f of [0, 0.5, 1]) chart.append(svg("text", { x: left - 6, y: y(vmax * f / 1.15) + 4, "text-anchor": "end" }, short(String(Math.round(vmax * f / 1.15)))));
  let d = "";
  points.forEach((p, i) => {
    const next = i + 1 < points.length ? points[i + 1].t : t1;
    d += `${i ? "L" : "M"}${x(p.t)},${y(p.v)} L${x(next)},${y(p.v)} `;
  });
  chart.append(svg("path", { d, class: "line" }));
  for (const p of points) {
    chart.append(svg("circle", { cx: x(p.t), cy: y(p.v), r: 4, class: "point" }));
    chart.append(svg("text", { x: x(p.t) + 6, y: y(p.v) - 6 }, `${p.label} · ${p.date}`));
  }
  const a = x(day(asOf));
  chart.append(svg("line", { x1: a, y1: top, x2: a, y2: H - bottom, class: "as-of" }));
  const nearEnd = a > W - 140;
  chart.append(svg("text", { x: nearEnd ? a - 4 : a + 4, y: H - bottom + 14, "text-anchor": nearEnd ? "end" : "start" }, `as of ${asOf}`));
}

function showTimeline(knownAt) {
  const byId = new Map(streamEvents.map((e) => [e.event_id, e]));
  const amendedBy = new Map();
  for (const e of streamEvents) {
    if (e.type === "event_corrected" || e.type === "event_retracted") {
      if (!knownAt || e.recorded_at <= knownAt) amendedBy.set(e.data.target_event_id, e);
    }
  }
  const items = streamEvents.map((e) => {
    const li = el("li");
    if (knownAt && e.recorded_at > knownAt) li.className = "unknown";
    const kind = el("span", e.type.replaceAll("_", " "), "kind");
    li.append(kind, el("span", ` · effective ${e.effective_date}`, "when"));
    if (e.type === "event_corrected" || e.type === "event_retracted") {
      const target = byId.get(e.data.target_event_id);
      li.append(el("span", e.type === "event_corrected" ? "correction" : "retraction", "badge"));
      li.append(el("div", `of #${target ? target.position : "?"} ${target ? target.type.replaceAll("_", " ") : e.data.target_event_id}${e.data.reason ? `: ${e.data.reason}` : ""}`));
      if (e.data.data) li.append(el("div", `now: ${describe(e.data.data)}${e.data.effective_date ? `, effective ${e.data.effective_date}` : ""}`));
    } else {
      const amendment = amendedBy.get(e.event_id);
      const summary = el("div", describe(e.data), amendment ? "amended" : "");
      li.append(summary);
      if (amendment) li.append(el("span", amendment.type === "event_corrected" ? `corrected by #${amendment.position}` : `retracted by #${amendment.position}`, "badge"));
    }
    if (e.metadata && e.metadata.note) li.append(el("div", e.metadata.note, "note"));
    li.append(el("div", `source: ${e.source.name}${e.source.url ? ` (${e.source.url})` : ""}`, "source"));
    li.append(el("div", `recorded ${e.recorded_at} at position ${e.position}`, "when"));
    return li;
  });
  $("timeline").replaceChildren(...items);
}

function describe(data) {
  if (data.valuation) return `valuation ${money(data.valuation)}`;
  if (data.round_name) return `${data.round_name}: ${money(data.amount)}${data.amount_usd ? ` (USD ${grouped(data.amount_usd)})` : ""}`;
  if (data.status) return `${data.status} by ${data.authority}: ${data.scope}`;
  if (data.name) return `${data.name} (${data.jurisdiction})`;
  return JSON.stringify(data);
}

async function start() {
  $("explorer").hidden = false;
  $("token-form").hidden = true;
  $("forget-token").hidden = false;
  const wanted = readHash();
  await loadCompanies();
  if (!$("company").options.length) {
    $("problem").textContent = "The ledger holds no company yet.";
    document.body.dataset.ready = "true";
    return;
  }
  if (wanted.company && [...$("company").options].some((o) => o.value === wanted.company)) $("company").value = wanted.company;
  $("as-of").value = wanted.asOf || today();
  await loadStream($("company").value);
  if (wanted.knownAt && [...$("known-at").options].some((o) => o.value === wanted.knownAt)) $("known-at").value = wanted.knownAt;
  await refresh();
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", () => {
  $("token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    try { await start(); } catch (error) { if (!(error instanceof Problem)) throw error; }
  });
  $("forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    askForToken();
  });
  $("company").addEventListener("change", async () => {
    $("known-at").value = "";
    try {
      await loadStream($("company").value);
      await refresh();
    } catch (error) {
      if (!(error instanceof Problem)) throw error;
      $("problem").textContent = error.message;
    }
  });
  $("as-of").addEventListener("change", refresh);
  $("known-at").addEventListener("change", refresh);
  if (token) start().catch((error) => { if (!(error instanceof Problem)) throw error; });
  else askForToken();
});

// The explorer: a company's state as of a date, as the ledger stood at a moment, from the API.
// Everything shown comes from the JSON answers; nothing is computed here but the drawing.
"use strict";

import { drawChart } from "./chart.js";
import { instant, instantElement, investorNames, isoDate, moneyElement, sourceElement } from "./format.js";
import { provenanceElement } from "./provenance.js";

const TOKEN_KEY = "ledger-explorer-token";
const $ = (id) => document.getElementById(id);
// Kept for this tab only (it survives a reload): a page of another origin-mate cannot find it
// in localStorage, and closing the tab forgets it.
let token = sessionStorage.getItem(TOKEN_KEY);
let streamEvents = [];
let shown = null; // the last answers drawn, redrawn when the chart's width changes
let asked = 0; // answers to an older question are dropped

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
    const option = el("option", `after #${e.position} ${e.type.replaceAll("_", " ")}, recorded ${instant(e.recorded_at)}`);
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
  if (!id || !isoDate($("as-of").value)) return;
  const question = ++asked;
  writeHash();
  const knownAt = $("known-at").value;
  const known = knownAt ? `?known_at=${encodeURIComponent(knownAt)}` : "";
  try {
    const [state, valuations] = await Promise.all([
      api(`/companies/${encodeURIComponent(id)}?${query()}`),
      api(`/companies/${encodeURIComponent(id)}/valuations${known}`),
    ]);
    if (question !== asked) return;
    showState(state);
    shown = { valuations: valuations.valuations, asOf: state.as_of };
    drawChart($("chart"), shown.valuations, shown.asOf);
    showTimeline(knownAt);
  } catch (error) {
    if (question !== asked) return;
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
  for (const id of ["reported-by", "jurisdiction", "valuation", "total-raised", "investors", "approvals", "answered"]) $(id).textContent = "–";
  $("rounds").tBodies[0].replaceChildren();
  $("rules").replaceChildren();
  $("chart").replaceChildren();
  shown = null;
}

// A node holding text and amounts in turn: parts are strings or [value, currency] pairs.
function withAmounts(tag, parts, className) {
  const node = el(tag, undefined, className);
  for (const part of parts) node.append(typeof part === "string" ? part : moneyElement("span", ...part));
  return node;
}

const COLUMNS = ["Effective", "Round", "Amount", "In USD", "Investors"];

function showState(s) {
  const name = investorNames([...s.rounds, ...streamEvents.map((e) => e.data.data || e.data)]);
  $("company-name").textContent = s.legal_name ? `${s.name} · ${s.legal_name}` : s.name;
  $("reported-by").replaceChildren(...(s.sources && s.sources.length ? [provenanceElement(s)] : ["no report of its registration"]));
  $("jurisdiction").textContent = s.jurisdiction;
  const v = s.valuation;
  $("valuation").replaceChildren(...(v
    ? [moneyElement("span", v.value, v.currency), ` (effective ${v.effective_date}${v.basis ? `, ${v.basis}` : ""}) `, provenanceElement(v)]
    : ["none reported"]));
  $("total-raised").replaceChildren(moneyElement("span", s.total_raised_usd, "USD"));
  $("investors").textContent = s.investors.length ? s.investors.map(name).join(", ") : "none";
  $("approvals").replaceChildren(...(s.approvals.length
    ? s.approvals.map((a) => {
      const item = el("div", `${a.status} by ${a.authority} (${a.jurisdiction}): ${a.scope}${a.product ? `, ${a.product}` : ""} since ${a.effective_date} `, "approval");
      item.append(provenanceElement(a));
      return item;
    })
    : ["none"]));
  $("answered").replaceChildren(`as of ${s.as_of}, as known at `, instantElement(s.known_at), ` (position ${s.position})`);
  const rows = s.rounds.map((r) => {
    const tr = el("tr");
    const amount = r.amount ? moneyElement("td", r.amount.value, r.amount.currency) : el("td", "undisclosed");
    const usd = r.amount_usd ? moneyElement("td", r.amount_usd, "USD") : el("td", "–");
    tr.append(el("td", r.effective_date), el("td", r.round_name), amount, usd,
      el("td", r.investors.map((i) => i.name || i.investor_id).join(", ")));
    // on a phone each row is a block, each cell labelled by its column (explorer.css)
    [...tr.cells].forEach((cell, i) => { cell.dataset.label = COLUMNS[i]; });
    // the round's sources below it, across the table, wide enough to read a dispute
    const sources = el("tr", undefined, "round-sources");
    const cell = provenanceElement(r, "td");
    cell.colSpan = COLUMNS.length;
    cell.dataset.label = "Sources";
    sources.append(cell);
    return [tr, sources];
  });
  $("rounds").tBodies[0].replaceChildren(...rows.flat());
  const rules = s.export_restrictions.map((r) => {
    const li = el("li");
    li.append(el("strong", r.title), el("span", ` (${r.authority}, since ${r.effective_date}; applies by ${r.reason}): ${r.restricted_items.join(", ")} `), provenanceElement(r));
    li.dataset.ruleId = r.rule_id;
    return li;
  });
  $("rules").replaceChildren(...(rules.length ? rules : [el("li", "none in force")]));
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
      if (e.data.data) li.append(withAmounts("div", ["now: ", ...describe(e.data.data), e.data.effective_date ? `, effective ${e.data.effective_date}` : ""]));
    } else {
      const amendment = amendedBy.get(e.event_id);
      const summary = withAmounts("div", describe(e.data), amendment ? "amended" : "");
      li.append(summary);
      if (amendment) li.append(el("span", amendment.type === "event_corrected" ? `corrected by #${amendment.position}` : `retracted by #${amendment.position}`, "badge"));
    }
    if (e.metadata && e.metadata.note) li.append(el("div", e.metadata.note, "note"));
    const source = el("div", "source: ", "source");
    source.append(sourceElement(e.source));
    if (e.source.published_at) source.append(", published ", instantElement(e.source.published_at));
    if (e.metadata && e.metadata.author) source.append(`, by ${e.metadata.author}`);
    li.append(source);
    const when = el("div", "recorded ", "when");
    when.append(instantElement(e.recorded_at), ` at position ${e.position}`);
    li.append(when);
    return li;
  });
  $("timeline").replaceChildren(...items);
}

// What an event says, as parts for withAmounts.
function describe(data) {
  if (data.valuation) return ["valuation ", [data.valuation.value, data.valuation.currency]];
  if (data.round_name) {
    const parts = [`${data.round_name}: `, data.amount ? [data.amount.value, data.amount.currency] : "undisclosed"];
    if (data.amount_usd && (!data.amount || data.amount.currency !== "USD")) parts.push(" (", [data.amount_usd, "USD"], ")");
    if (data.investors && data.investors.length) parts.push(`; investors ${data.investors.map((i) => i.name || i.investor_id).join(", ")}`);
    return parts;
  }
  if (data.status) return [`${data.status} by ${data.authority}: ${data.scope}`];
  if (data.name) return [`${data.name} (${data.jurisdiction})`];
  return [JSON.stringify(data)];
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
  $("as-of").value = wanted.asOf && isoDate(wanted.asOf) ? wanted.asOf : today();
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
  // A text field with a pattern, so the date reads 2023-10-20 in every browser and locale:
  // each complete, valid date typed is asked at once.
  $("as-of").addEventListener("input", () => {
    const valid = isoDate($("as-of").value);
    $("as-of").setCustomValidity(valid ? "" : "a date as YYYY-MM-DD, e.g. 2023-10-20");
    if (valid) refresh();
  });
  $("as-of").addEventListener("change", () => $("as-of").reportValidity());
  new ResizeObserver(() => { if (shown) drawChart($("chart"), shown.valuations, shown.asOf); }).observe($("chart"));
  $("known-at").addEventListener("change", refresh);
  if (token) start().catch((error) => { if (!(error instanceof Problem)) throw error; });
  else askForToken();
});

// Where each fact shown comes from: its sources, and the values other sources gave instead.
// Both are <details> elements, so they open without script, by touch as by mouse.
"use strict";

import { instantElement, moneyElement, sourceElement } from "./format.js";

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

// One list item per report: the source's name (a link when it has an address) and its date.
function sourceList(sources) {
  const list = el("ul", undefined, "source-list");
  for (const s of sources) {
    const li = el("li");
    li.append(sourceElement(s));
    li.append(s.published_at ? ", published " : ", undated", ...(s.published_at ? [instantElement(s.published_at)] : []));
    list.append(li);
  }
  return list;
}

// "5 sources", opening to their names.
export function sourcesElement(sources) {
  const details = el("details", undefined, "sources");
  const names = sources.map((s) => s.name).join(", ");
  const summary = el("summary", plural(sources.length, "source", "sources"));
  summary.title = names;
  details.append(summary, sourceList(sources));
  return details;
}

// How a disputed field's value reads: amounts as amounts, anything else as given.
function valueElement(field, value) {
  if (value && typeof value === "object" && "value" in value && "currency" in value) return moneyElement("strong", value.value, value.currency);
  if (field.endsWith("_usd") && value !== null) return moneyElement("strong", value, "USD");
  return el("strong", value === null ? "none" : typeof value === "object" ? JSON.stringify(value) : value);
}

// The value a fact shows for a field (a valuation shows its money flat, not under "valuation").
function chosenValue(fact, field) {
  if (field in fact) return fact[field];
  if (field === "valuation" || field === "post_money_valuation") return { value: fact.value, currency: fact.currency };
  return null;
}

// One side of a dispute: the value and the sources that gave it.
function side(field, value, sources, chosen) {
  const block = el("div", undefined, chosen ? "side chosen" : "side other");
  const head = el("p");
  head.append(chosen ? "shown: " : "other: ", valueElement(field, value), ` (${plural(sources.length, "source", "sources")})`);
  block.append(head, sourceList(sources));
  return block;
}

// "disputed", opening to both sides of every field the reports disagree on; null if none.
export function disputeElement(fact) {
  const fields = Object.keys(fact.disputes || {});
  if (!fields.length) return null;
  const details = el("details", undefined, "dispute");
  const summary = el("summary", "disputed", "badge");
  summary.title = `sources disagree on ${fields.map((f) => f.replaceAll("_", " ")).join(", ")}`;
  details.append(summary);
  for (const field of fields) {
    const others = fact.disputes[field];
    const dissenting = new Set(others.flatMap((o) => o.sources.map((s) => s.event_id)));
    const backing = fact.sources.filter((s) => !dissenting.has(s.event_id));
    const section = el("div", undefined, "field");
    section.append(el("p", field.replaceAll("_", " "), "field-name"), side(field, chosenValue(fact, field), backing, true));
    for (const other of others) section.append(side(field, other.value, other.sources, false));
    details.append(section);
  }
  return details;
}

// The sources and, when disputed, the dispute of a fact, side by side.
export function provenanceElement(fact, tag = "span") {
  const node = el(tag, undefined, "provenance");
  node.append(sourcesElement(fact.sources || []));
  const dispute = disputeElement(fact);
  if (dispute) node.append(dispute);
  return node;
}


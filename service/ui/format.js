// How the explorer writes amounts, dates, instants, sources and investors: one way everywhere.
"use strict";

// International English: "US$" and "CN¥" say which dollar and which yuan, whatever the browser.
const LOCALE = "en-001";
const compactNumber = new Intl.NumberFormat(LOCALE, { notation: "compact", compactDisplay: "long", maximumFractionDigits: 2 });
const symbols = new Map();

function symbolOf(currency) {
  if (!symbols.has(currency)) {
    let symbol = currency;
    try {
      const parts = new Intl.NumberFormat(LOCALE, { style: "currency", currency }).formatToParts(1);
      symbol = parts.find((p) => p.type === "currency").value;
    } catch {
      // a code the browser does not know is shown as the code itself
    }
    symbols.set(currency, /[A-Za-z]$/.test(symbol) ? `${symbol} ` : symbol);
  }
  return symbols.get(currency);
}

// Exact decimal strings, grouped for reading: "2500000000" -> "2,500,000,000".
export function grouped(value) {
  const [whole, fraction] = String(value).split(".");
  const digits = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return fraction ? `${digits}.${fraction}` : digits;
}

// A number as people say it: 342000000 -> "342 million", 2500 -> "2,500".
export function compact(value) {
  const n = Number(value);
  return Math.abs(n) >= 1e6 ? compactNumber.format(n) : grouped(value);
}

// An amount as people read it: "US$342 million", "CN¥2.5 billion"; null is "undisclosed".
export function money(value, currency) {
  if (value === null || value === undefined) return "undisclosed";
  return `${symbolOf(currency)}${compact(value)}`;
}

// The amount to the last digit, for a tooltip: "CN¥2,500,000,000".
export function exactMoney(value, currency) {
  return `${symbolOf(currency)}${grouped(value)}`;
}

// An element showing an amount, its exact figure on hover.
export function moneyElement(tag, value, currency) {
  const node = document.createElement(tag);
  node.textContent = money(value, currency);
  if (value !== null && value !== undefined) node.title = exactMoney(value, currency);
  return node;
}

// An instant to the minute, in UTC: "2023-10-21T08:00:12.345678Z" -> "2023-10-21 08:00 UTC".
export function instant(value) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const iso = date.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

// An instant in a <time> element, which never breaks across lines.
export function instantElement(value) {
  const node = document.createElement("time");
  node.dateTime = value;
  node.textContent = instant(value);
  return node;
}

// A calendar date is shown as the API gives it: ISO 8601, "2023-10-20".
export function isoDate(value) {
  return /^\d{4}-\d{2}-\d{2}$/.test(value) && !Number.isNaN(Date.parse(`${value}T00:00:00Z`))
    && new Date(`${value}T00:00:00Z`).toISOString().startsWith(value);
}

// A source: its name, a link to its address when it has one (opened apart, telling it nothing).
export function sourceElement(source) {
  let url = null;
  try {
    url = source.url ? new URL(source.url) : null;
  } catch {
    url = null;
  }
  if (!url || !["http:", "https:"].includes(url.protocol)) return document.createTextNode(source.name);
  const link = document.createElement("a");
  link.href = url.href;
  link.textContent = source.name;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  return link;
}

// Investor names from the rounds that name them; an investor never named is shown by its id.
export function investorNames(rounds) {
  const names = new Map();
  for (const round of rounds) {
    for (const investor of round.investors || []) {
      if (investor.name) names.set(investor.investor_id, investor.name);
    }
  }
  return (id) => names.get(id) || id;
}

// The valuation chart: a step line over a date axis, drawn in SVG at the size it is shown.
"use strict";

import { compact, money } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const DAY = 864e5;

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

const day = (d) => Date.parse(`${d}T00:00:00Z`);

// Ticks on the first of a month, every `step` months, between t0 and t1; labelled "2023-07".
function dateTicks(t0, t1, width) {
  const months = (t1 - t0) / (30.44 * DAY);
  const fit = Math.max(1, Math.floor(width / 64)); // a label is about 56 px wide
  const step = [1, 2, 3, 6, 12, 24, 60].find((s) => months / s <= fit) || 120;
  const start = new Date(t0);
  let y = start.getUTCFullYear();
  let m = Math.ceil((start.getUTCMonth() + (start.getUTCDate() > 1 ? 1 : 0)) / step) * step;
  const ticks = [];
  for (;;) {
    const t = Date.UTC(y + Math.floor(m / 12), m % 12, 1);
    if (t > t1) break;
    const d = new Date(t).toISOString();
    ticks.push({ t, label: step >= 12 ? d.slice(0, 4) : d.slice(0, 7) });
    m += step;
  }
  return ticks;
}

// Round numbers for the value axis: 0 and two or three steps of 1, 2 or 5 times a power of 10.
function valueTicks(vmax) {
  const raw = vmax / 3;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * power).find((s) => s >= raw);
  const ticks = [];
  for (let v = 0; v <= vmax + step / 2; v += step) ticks.push(v);
  return ticks;
}

// A valuation holds from its effective date until the next one.
export function drawChart(chart, valuations, asOf) {
  const W = Math.max(280, Math.round(chart.clientWidth || 640));
  const H = W < 480 ? 220 : 260;
  const [right, top, bottom] = [16, 44, 36]; // the as-of label sits above the highest value's
  chart.setAttribute("viewBox", `0 0 ${W} ${H}`);
  chart.setAttribute("height", H);
  chart.replaceChildren();
  if (!valuations.length) {
    chart.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no valuation reported"));
    return;
  }
  const currencies = new Set(valuations.map((v) => v.currency));
  const label = (v) => (currencies.size === 1 ? money(String(v), valuations[0].currency) : compact(String(v)));
  const points = valuations.map((v) => ({ t: day(v.effective_date), v: Number(v.value), text: money(v.value, v.currency) }));
  const t0 = Math.min(points[0].t, day(asOf)) - 30 * DAY;
  const t1 = Math.max(points[points.length - 1].t, day(asOf)) + 30 * DAY;
  const ticks = valueTicks(Math.max(...points.map((p) => p.v)));
  const vmax = ticks[ticks.length - 1];
  // the value axis is as wide as its widest label, measured as drawn
  const valueLabels = ticks.map((v) => svg("text", { "text-anchor": "end" }, v ? label(v) : "0"));
  chart.append(...valueLabels);
  const left = Math.ceil(Math.max(...valueLabels.map((t) => t.getBBox().width))) + 14;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (W - left - right);
  const y = (v) => H - bottom - (v / vmax) * (H - top - bottom);

  ticks.forEach((v, i) => {
    chart.append(svg("line", { x1: left, y1: y(v), x2: W - right, y2: y(v), class: "grid" }));
    valueLabels[i].setAttribute("x", left - 8);
    valueLabels[i].setAttribute("y", y(v) + 4);
  });
  chart.append(svg("line", { x1: left, y1: H - bottom, x2: W - right, y2: H - bottom, class: "axis" }));
  for (const tick of dateTicks(t0, t1, W - left - right)) {
    chart.append(svg("line", { x1: x(tick.t), y1: H - bottom, x2: x(tick.t), y2: H - bottom + 5, class: "axis" }));
    chart.append(svg("text", { x: x(tick.t), y: H - bottom + 19, "text-anchor": "middle", class: "tick" }, tick.label));
  }
  let d = "";
  points.forEach((p, i) => {
    const next = i + 1 < points.length ? points[i + 1].t : t1;
    d += `${i ? "L" : "M"}${x(p.t)},${y(p.v)} L${x(next)},${y(p.v)} `;
  });
  chart.append(svg("path", { d, class: "line" }));
  for (const p of points) {
    const point = svg("circle", { cx: x(p.t), cy: y(p.v), r: 4, class: "point" });
    point.append(svg("title", {}, `${p.text} from ${new Date(p.t).toISOString().slice(0, 10)}`));
    chart.append(point);
    const end = x(p.t) > W - right - 120; // keep the label inside the drawing
    chart.append(svg("text", { x: x(p.t) + (end ? -6 : 6), y: y(p.v) - 8, "text-anchor": end ? "end" : "start", class: "value" }, p.text));
  }
  const a = x(day(asOf));
  chart.append(svg("line", { x1: a, y1: 18, x2: a, y2: H - bottom, class: "as-of" }));
  const nearEnd = a > W - right - 110;
  chart.append(svg("text", { x: nearEnd ? a - 4 : a + 4, y: 14, "text-anchor": nearEnd ? "end" : "start", class: "as-of-label" }, `as of ${asOf}`));
}

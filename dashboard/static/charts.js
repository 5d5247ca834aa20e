// Small SVG charts drawn with the DOM (no library, no inline styles: CSP-safe, works offline).
// Every label is set as textContent; numbers are checked before they become coordinates.

const NS = "http://www.w3.org/2000/svg";

function el(name, attrs, parent) {
  const node = document.createElementNS(NS, name);
  for (const key in attrs) {
    node.setAttribute(key, String(attrs[key]));
  }
  if (parent) {
    parent.appendChild(node);
  }
  return node;
}

function text(parent, x, y, content, cls, anchor) {
  const node = el("text", { x: x, y: y, class: cls || "axis", "text-anchor": anchor || "start" }, parent);
  node.textContent = content;
  return node;
}

function finite(value) {
  return typeof value === "number" && isFinite(value);
}

// Drawn at the container's own width, so 14 px text stays 14 px in any panel.
function width(container) {
  return Math.max(240, Math.round(container.clientWidth || 480));
}

function svg(width, height, label) {
  const root = el("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": label, preserveAspectRatio: "xMidYMid meet" });
  return root;
}

// Valence (−1..1) over seconds, one dot per point coloured by its expression label;
// `cursor` (seconds) draws a marker for the teacher's step-through.
export function timeline(container, points, opts) {
  const W = width(container), H = opts.height || 190, L = 30, R = 8, T = 12, B = 26;
  const root = svg(W, H, opts.label);
  const usable = points.filter(function (p) { return finite(p[0]) && finite(p[2]); });
  const maxT = Math.max(10, usable.length ? usable[usable.length - 1][0] : 0);
  const x = function (t) { return L + (W - L - R) * (t / maxT); };
  const y = function (v) { return T + (H - T - B) * (1 - (v + 1) / 2); };
  el("line", { x1: L, x2: W - R, y1: y(0), y2: y(0), class: "grid-zero" }, root);
  el("line", { x1: L, x2: W - R, y1: y(1), y2: y(1), class: "grid" }, root);
  el("line", { x1: L, x2: W - R, y1: y(-1), y2: y(-1), class: "grid" }, root);
  text(root, L - 6, y(1) + 5, "+", "axis", "end");
  text(root, L - 6, y(-1) + 5, "−", "axis", "end");
  text(root, L - 6, y(0) + 5, "0", "axis", "end");
  text(root, W - R, H - 8, Math.round(maxT) + " s", "axis", "end");
  text(root, L, H - 8, "0 s", "axis", "start");
  if (usable.length > 1) {
    const d = usable.map(function (p, i) { return (i ? "L" : "M") + x(p[0]).toFixed(1) + " " + y(p[2]).toFixed(1); }).join(" ");
    el("path", { d: d, class: "valence-line" }, root);
  }
  usable.forEach(function (p) {
    el("circle", { cx: x(p[0]).toFixed(1), cy: y(p[2]).toFixed(1), r: 5, class: "dot expr-" + String(p[1]).replace(/[^a-z]/g, "") }, root);
  });
  if (finite(opts.cursor)) {
    el("line", { x1: x(opts.cursor), x2: x(opts.cursor), y1: T, y2: H - B, class: "cursor" }, root);
  }
  container.replaceChildren(root);
}

// Words per minute per page, in reading order; skims and dwells marked; the adult average
// drawn as a line. A skimmed page has no reading pace: it is drawn as a low marked bar
// labelled "skimmed", never as its (absurd) words per minute.
export function pace(container, pages, opts) {
  const W = width(container), H = opts.height || 190, L = 42, R = 8, T = 14, B = 26;
  const root = svg(W, H, opts.label);
  const wpmOf = function (p) { return finite(p.wpm) && !p.skim ? p.wpm : 0; };
  const values = pages.map(wpmOf);
  const maxV = Math.max(400, opts.average * 1.5, Math.min(1000, Math.max.apply(null, values.concat([0])) * 1.15));
  const y = function (v) { return T + (H - T - B) * (1 - Math.min(v, maxV) / maxV); };
  const n = Math.max(pages.length, 6);
  const slot = (W - L - R) / n;
  pages.forEach(function (p, i) {
    const v = p.skim ? maxV * 0.04 : wpmOf(p);
    const cls = "bar" + (p.skim ? " skim" : p.dwell ? " dwell" : "") + (i === opts.highlight ? " current" : "");
    el("rect", { x: (L + i * slot + slot * 0.15).toFixed(1), y: y(v).toFixed(1), width: (slot * 0.7).toFixed(1), height: Math.max(1, H - B - y(v)).toFixed(1), class: cls }, root);
    text(root, L + i * slot + slot / 2, H - 12, String(i + 1), "axis", "middle");
    if (p.skim && pages.length <= 12) {
      text(root, L + i * slot + slot / 2, y(v) - 6, opts.skimLabel || "skim", "bar-value skim-label", "middle");
    } else if (finite(p.wpm) && pages.length <= 12) {
      // A bar beyond the scale (a skim at 2,000 wpm) carries its number inside its top.
      const over = v > maxV;
      text(root, L + i * slot + slot / 2, over ? T + 16 : y(v) - 6, String(Math.round(p.wpm)), over ? "bar-value inside" : "bar-value", "middle");
    }
  });
  el("line", { x1: L, x2: W - R, y1: y(opts.average), y2: y(opts.average), class: "average" }, root);
  text(root, L - 6, y(opts.average) + 5, String(opts.average), "axis", "end");
  text(root, L - 6, y(0) + 5, "0", "axis", "end");
  text(root, L - 6, y(maxV) + 10, String(Math.round(maxV)), "axis", "end");
  container.replaceChildren(root);
}

// Horizontal bars on a logarithmic scale: this visit's monthly rate beside the yardsticks.
// Plain HTML, so the long labels wrap.
export function yardstick(container, rows) {
  const maxLog = Math.log10(Math.max.apply(null, rows.map(function (r) { return r.value; }).concat([10])));
  container.replaceChildren.apply(container, rows.map(function (r) {
    const row = document.createElement("div");
    row.className = "yard-row " + r.cls;
    const label = document.createElement("span");
    label.className = "yard-label";
    label.textContent = r.label;
    const track = document.createElement("span");
    track.className = "yard-track";
    const fill = document.createElement("span");
    fill.className = "yard-fill";
    fill.style.width = Math.max(1, (100 * (r.value > 1 ? Math.log10(r.value) : 0)) / maxLog).toFixed(1) + "%";
    track.appendChild(fill);
    row.append(label, track);
    return row;
  }));
}

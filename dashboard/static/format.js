// Formatting shared by the panels: numbers, times, durations, and filling the page's fields.
// Every value is set as textContent: no markup is ever built from a string.

import { MISSING, locale, t } from "./i18n.js";

export const missing = MISSING;

export function fmt(value, digits) {
  return value === null || value === undefined ? missing : Number(value).toFixed(digits);
}

export function grouped(value) {
  return Math.round(value).toLocaleString(locale());
}

export function pct(share) {
  return Math.round(share) + " %";
}

export function clock(ts) {
  return ts === null || ts === undefined ? missing : new Date(ts * 1000).toLocaleTimeString(locale());
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return missing;
  }
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) {
    return s + " " + t("unit.s");
  }
  if (s >= 10 * 60) {
    return Math.round(s / 60) + " " + t("unit.min");
  }
  return Math.floor(s / 60) + " " + t("unit.min") + " " + (s % 60) + " " + t("unit.s");
}

export function field(root, name) {
  return root.querySelector('[data-field="' + name + '"]');
}

export function setField(root, name, text) {
  const node = field(root, name);
  if (node) {
    node.textContent = text;
  }
  return node;
}

export function li(text, cls) {
  const node = document.createElement("li");
  if (cls) {
    node.className = cls;
  }
  node.textContent = text;
  return node;
}

export function expr(label) {
  return t("expr." + label);
}

export function whatOf(params) {
  return params.topic ? t("what.page_on", { topic: t("topic." + params.topic) }) : t("what.item", { item: params.item });
}

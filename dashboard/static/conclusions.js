// One conclusion of dashboard/profile.py (a key with numbers) as a sentence, who draws it and
// what it rests on: for the summary panel and the receipt.

import { expr, pct, whatOf } from "./format.js";
import { t } from "./i18n.js";
import { patent } from "./sources.js";

function conclusionText(c) {
  const p = Object.assign({}, c.params);
  if (p.label) {
    p.label = expr(p.label);
  }
  if (p.topic && c.key === "interest") {
    p.topic = t("topic." + p.topic);
  }
  if (p.share !== undefined) {
    p.share = pct(p.share);
  }
  if (p.percentile !== undefined) {
    p.percentile = pct(p.percentile);
  }
  if (p.item !== undefined) {
    p.what = whatOf(c.params);
  }
  // A pace is "faster" or "slower" only when the dashboard's evidence rule says so.
  let key = c.key === "pace" ? "c.pace." + (p.verdict === "faster" || p.verdict === "slower" ? p.verdict : "unsure") : "c." + c.key;
  if (c.key === "look_aways" && p.count === 1) {
    key = "c.look_aways.one";
  }
  let text = t(key, p);
  if (c.key === "moved_by") {
    text = text.charAt(0).toUpperCase() + text.slice(1);
  }
  return text;
}

// How much a conclusion rests on: pages and seconds, or the visits behind a crowd figure.
function evidenceText(e) {
  if (!e) {
    return "";
  }
  if (e.visits) {
    return t("c.evidence.visits", { visits: e.visits });
  }
  const seconds = e.seconds === null || e.seconds === undefined ? null : Math.round(e.seconds);
  if (e.pages && seconds !== null) {
    return e.pages === 1 ? t("c.evidence.page", { seconds: seconds }) : t("c.evidence.pages", { pages: e.pages, seconds: seconds });
  }
  return seconds !== null ? t("c.evidence.seconds", { seconds: seconds }) : "";
}

export function conclusionItem(c) {
  const row = document.createElement("li");
  row.dataset.key = c.key;
  const sentence = document.createElement("span");
  sentence.className = "sentence";
  sentence.textContent = conclusionText(c);
  const source = document.createElement("span");
  source.className = "who";
  source.textContent = t("c.audience." + c.audience) + " · " + patent(c.source);
  row.append(sentence, source);
  const basis = evidenceText(c.evidence);
  if (basis) {
    const evidence = document.createElement("span");
    evidence.className = "evidence";
    evidence.dataset.testid = "evidence";
    evidence.textContent = basis;
    row.appendChild(evidence);
  }
  return row;
}

// Panel "Reactions per page": the leading expression of each page or post and the mix.

import { contract } from "./contract.js";
import { expr, field, fmt, li } from "./format.js";
import { t } from "./i18n.js";

export function renderReactions(panel, visit, cut) {
  // A reaction's `mean` is one share per expression, in the wire's order.
  const expressions = contract.expressions;
  const pages = {};
  visit.pages.forEach(function (p) { pages[p.item] = p; });
  const highlight = cut !== null && visit.pages[cut] ? visit.pages[cut].item : null;
  const rows = Object.keys(visit.items).filter(function (item) { return visit.items[item].reaction; }).map(function (item) {
    const reaction = visit.items[item].reaction;
    const row = document.createElement("li");
    row.dataset.item = item;
    row.classList.toggle("current", item === highlight);
    const name = document.createElement("span");
    name.className = "item-name";
    name.textContent = pages[item] ? t("topic." + pages[item].topic) + " · " + item : item;
    let top = 1; // the leading expression other than the first (neutral)
    for (let k = 2; k < expressions.length; k++) {
      if (reaction.mean[k] > reaction.mean[top]) {
        top = k;
      }
    }
    const label = document.createElement("span");
    label.className = "item-label expr-" + expressions[top];
    label.textContent = expr(expressions[top]) + " " + fmt(reaction.mean[top], 2);
    const bar = document.createElement("span");
    bar.className = "stack";
    reaction.mean.forEach(function (share, k) {
      if (share > 0.005) {
        const part = document.createElement("span");
        part.className = "part expr-" + expressions[k];
        part.style.width = Math.round(share * 1000) / 10 + "%";
        part.title = expr(expressions[k]) + " " + fmt(share, 2);
        bar.appendChild(part);
      }
    });
    row.append(name, label, bar);
    return row;
  });
  const list = field(panel, "reactions");
  if (!rows.length) {
    list.replaceChildren(li(t("react.none"), "fine"));
  } else {
    list.replaceChildren.apply(list, rows);
  }
}

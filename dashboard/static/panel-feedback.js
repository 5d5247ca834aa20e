// "Was the screen right?": totals per screen and conclusion, never one visitor's answers; each
// withheld below k (the server withholds; the page only says so).

import { contract } from "./contract.js";
import { expr, li } from "./format.js";
import { t } from "./i18n.js";
import { $, state } from "./page-state.js";

export function renderFeedback() {
  const root = $("feedback-screens");
  const k = state.feedback.k;
  const screens = state.feedback.screens || {};
  const agents = Object.keys(screens).sort();
  const blocks = agents.map(function (agent) {
    const screen = screens[agent];
    const block = document.createElement("div");
    block.className = "feedback-screen";
    block.dataset.agent = agent;
    const head = document.createElement("h3");
    head.textContent = t("feedback.screen", { agent: agent, n: screen.visits });
    block.appendChild(head);
    const list = document.createElement("ul");
    list.className = "feedback-list";
    contract.feedback.graded.forEach(function (kind) {
      const figure = screen.kinds[kind];
      if (!figure) {
        return;
      }
      if (figure.value === null) {
        list.appendChild(li(t("feedback.kind." + kind) + ": " + t("feedback.withheld", { k: k, n: figure.visits }), "feedback-withheld"));
        return;
      }
      const v = figure.value;
      const line = li(t("feedback.right", { what: t("feedback.kind." + kind), right: v.right, n: v.graded }), "feedback-figure");
      line.dataset.kind = kind;
      const behind = document.createElement("span");
      behind.className = "fine";
      behind.textContent = " " + t("feedback.behind", { visits: figure.visits, cant: v.cant_say });
      line.appendChild(behind);
      list.appendChild(line);
    });
    block.appendChild(list);
    const confusion = screen.confusion;
    if (confusion.value !== null) {
      block.appendChild(confusionTable(confusion));
    } else if (confusion.visits > 0 || screen.kinds[contract.feedback.felt]) {
      block.appendChild(li(t("feedback.felt") + ": " + t("feedback.withheld", { k: k, n: confusion.visits }), "feedback-withheld"));
    }
    return block;
  });
  if (!blocks.length) {
    const none = document.createElement("p");
    none.className = "fine";
    none.textContent = t("feedback.none");
    blocks.push(none);
  }
  root.replaceChildren.apply(root, blocks);
}

function confusionTable(confusion) {
  const table = document.createElement("table");
  table.className = "confusion";
  table.dataset.testid = "confusion";
  const caption = document.createElement("caption");
  caption.textContent = t("feedback.confusion", { visits: confusion.visits });
  table.appendChild(caption);
  const rows = confusion.value;
  const felt = [];
  Object.keys(rows).forEach(function (saw) {
    Object.keys(rows[saw]).forEach(function (word) {
      if (felt.indexOf(word) < 0) {
        felt.push(word);
      }
    });
  });
  felt.sort();
  const head = document.createElement("tr");
  const corner = document.createElement("th");
  corner.scope = "col";
  corner.textContent = t("feedback.saw_felt");
  head.appendChild(corner);
  felt.forEach(function (word) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = expr(word);
    head.appendChild(th);
  });
  const thead = document.createElement("thead");
  thead.appendChild(head);
  table.appendChild(thead);
  const tbody = document.createElement("tbody");
  Object.keys(rows).sort().forEach(function (saw) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = expr(saw);
    tr.appendChild(th);
    felt.forEach(function (word) {
      const td = document.createElement("td");
      td.textContent = String(rows[saw][word] || 0);
      td.classList.toggle("agree", word === saw);
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
  });
  table.appendChild(tbody);
  return table;
}

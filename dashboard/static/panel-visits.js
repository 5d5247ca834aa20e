// The "Recent visits" list: newest first, at most MAX_VISITS_SHOWN; a click follows a visit.

import { clock, expr, missing, setField } from "./format.js";
import { t } from "./i18n.js";
import { $, phase, render, state } from "./page-state.js";

const MAX_VISITS_SHOWN = 24;
const visitRows = new Map();

export function showVisitRow(visit) {
  let row = visitRows.get(visit.visit);
  if (!row) {
    row = $("visit-template").content.firstElementChild.cloneNode(true);
    row.dataset.testid = "visit-" + visit.visit;
    row.dataset.visit = visit.visit;
    row.querySelector(".visit-pick").addEventListener("click", function () {
      state.followed = visit.visit;
      state.step = null;
      render(true);
    });
    visitRows.set(visit.visit, row);
  }
  const p = phase(visit);
  setField(row, "visit", visit.visit);
  setField(row, "agent", visit.agent);
  setField(row, "started", clock(visit.started));
  const expression = visit.expression || {};
  setField(row, "expression", expression.label ? expr(expression.label) : missing);
  const badge = setField(row, "active", t("visit." + p));
  badge.className = "badge " + p;
  row.classList.toggle("is-followed", visit.visit === state.shownId);
}

export function orderVisitRows() {
  const list = $("visits-list");
  const ids = Array.from(visitRows.keys()).sort(function (a, b) { return state.arrival.get(b) - state.arrival.get(a); });
  ids.slice(MAX_VISITS_SHOWN).forEach(function (id) {
    visitRows.get(id).remove();
    visitRows.delete(id);
  });
  const shown = ids.slice(0, MAX_VISITS_SHOWN);
  const current = Array.from(list.children).map(function (node) { return node.dataset.visit; });
  if (current.join() !== shown.join()) {
    list.replaceChildren.apply(list, shown.map(function (id) { return visitRows.get(id); }));
  }
}

export function removeVisitRow(id) {
  const row = visitRows.get(id);
  if (row) {
    row.remove();
    visitRows.delete(id);
  }
}

export function renderVisits() {
  visitRows.forEach(function (row, id) { row.classList.toggle("is-followed", id === state.shownId); });
  $("visits-empty").hidden = visitRows.size > 0;
}

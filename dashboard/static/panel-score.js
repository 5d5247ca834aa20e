// Panel "Your score" (off by default): every term of dashboard/profile.py's formula with its
// input, and the ratings as the server defines them.

import { contract } from "./contract.js";
import { field, grouped, setField } from "./format.js";
import { t } from "./i18n.js";
import { $ } from "./page-state.js";

/** The rating scale, "<name> ≥ <floor>" from the best down; the last rating has no floor. */
function ratingScale() {
  return contract.score.ratings.map(function (rating) {
    return rating[0] === null ? rating[1] : rating[1] + " ≥ " + rating[0];
  }).join(" · ");
}

export function renderScore(panel, visit) {
  const on = $("score-toggle").checked;
  panel.hidden = !on;
  if (!on) {
    return;
  }
  const score = (visit.profile || {}).score;
  if (!score) {
    return;
  }
  setField(panel, "score-points", grouped(score.points));
  const rating = setField(panel, "score-rating", score.rating);
  rating.className = "rating rating-" + score.rating.toLowerCase();
  const rows = [];
  const start = document.createElement("tr");
  const startName = document.createElement("th");
  startName.scope = "row";
  startName.textContent = t("score.start");
  const startFormula = document.createElement("td");
  const startPoints = document.createElement("td");
  startPoints.className = "points";
  startPoints.textContent = String(score.start);
  start.append(startName, startFormula, startPoints);
  rows.push(start);
  score.terms.forEach(function (term) {
    const row = document.createElement("tr");
    row.classList.toggle("unused", term.points === null);
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = t("score.term." + term.key);
    const formula = document.createElement("td");
    formula.className = "formula-cell";
    formula.textContent = (term.weight > 0 ? "+" : "−") + Math.abs(term.weight) + " " + term.unit +
      (term.input === null ? "" : "  [" + term.input + "]") + ", ±" + term.cap;
    const points = document.createElement("td");
    points.className = "points";
    points.textContent = term.points === null ? t("score.unused") : term.points === 0 ? "0" : (term.points > 0 ? "+" : "−") + Math.abs(term.points);
    row.append(name, formula, points);
    rows.push(row);
  });
  const total = document.createElement("tr");
  total.className = "total";
  const totalName = document.createElement("th");
  totalName.scope = "row";
  totalName.textContent = t("score.total") + " → " + t("score.rating");
  const totalFormula = document.createElement("td");
  totalFormula.textContent = ratingScale();
  const totalPoints = document.createElement("td");
  totalPoints.className = "points";
  totalPoints.textContent = score.points + " " + score.rating;
  total.append(totalName, totalFormula, totalPoints);
  rows.push(total);
  const tbody = field(panel, "score-terms");
  tbody.replaceChildren.apply(tbody, rows);
}

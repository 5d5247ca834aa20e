// Panel "Data points inferred about you": the count, and this visit's rate over a month beside
// the Stasi's and Facebook's, on a logarithmic scale.

import * as Charts from "./charts.js";
import { field, grouped, setField } from "./format.js";
import { t } from "./i18n.js";
import { elapsed } from "./page-state.js";

// Yardsticks of the page's own (docs/dashboard.md): the server knows nothing of them.
const STASI_PER_MONTH = 173081;
const FACEBOOK_PER_MONTH = 1.2e9;
const MONTH_S = 30 * 86400;

export function renderDataPoints(panel, visit) {
  setField(panel, "data-points", grouped(visit.data_points));
  const seconds = Math.max(elapsed(visit) || 0, 10); // no wild rates from the first second
  const perMonth = (visit.data_points / seconds) * MONTH_S;
  Charts.yardstick(field(panel, "yardstick"), [
    { label: t("data.you") + ": " + grouped(perMonth), value: perMonth, cls: "you" },
    { label: t("data.stasi"), value: STASI_PER_MONTH, cls: "stasi" },
    { label: t("data.facebook"), value: FACEBOOK_PER_MONTH, cls: "facebook" },
  ]);
  const note = document.createElement("p");
  note.className = "yard-note";
  note.textContent = t("data.times", { x: perMonth >= STASI_PER_MONTH ? grouped(perMonth / STASI_PER_MONTH) : (perMonth / STASI_PER_MONTH).toFixed(2) });
  field(panel, "yardstick").appendChild(note);
}

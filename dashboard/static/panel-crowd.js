// Panel "You and the other visitors": GET /api/crowd?visit= every few seconds; each figure is
// withheld below k visits by the server.

import { field, li, pct } from "./format.js";
import { getJSON } from "./http.js";
import { t } from "./i18n.js";
import { crowdFor, mode, scheduleRender, state } from "./page-state.js";

const CROWD_EVERY_MS = 3000;
let crowdTimer = null;

export function scheduleCrowd(delay) {
  window.clearTimeout(crowdTimer);
  crowdTimer = window.setTimeout(fetchCrowd, delay === undefined ? CROWD_EVERY_MS : delay);
}

function fetchCrowd() {
  const id = state.shownId;
  if (!id || mode === "receipt") {
    scheduleCrowd(CROWD_EVERY_MS);
    return;
  }
  getJSON("/api/crowd?visit=" + encodeURIComponent(id))
    .then(function (crowd) {
      if (crowd && state.shownId === id) {
        state.crowd = crowd;
        scheduleRender();
      }
    })
    .catch(function (error) { console.warn("crowd figures unavailable", error); })
    .finally(function () { scheduleCrowd(CROWD_EVERY_MS); });
}

export function renderCrowd(panel, visit) {
  const list = field(panel, "crowd");
  const crowd = crowdFor(visit);
  if (!crowd) {
    list.replaceChildren(li(t("waiting"), "fine"));
    return;
  }
  const rows = [];
  const c = crowd.compare;
  if (c.pace_percentile !== null && c.pace_percentile !== undefined) {
    rows.push(li(t("crowd.pace", { p: pct(c.pace_percentile) }), "crowd-fact"));
  }
  const emo = crowd.most_emotional_item;
  if (emo.value) {
    rows.push(li(t("crowd.emotional") + ": " + emo.value.item + (c.same_most_emotional ? " " + t("crowd.you_too") : ""), "crowd-fact"));
  }
  const skim = crowd.most_skimmed_item;
  if (skim.value) {
    rows.push(li(t("crowd.skimmed") + ": " + skim.value.item + (c.skimmed_it_too ? " " + t("crowd.you_too") : ""), "crowd-fact"));
  }
  if (!rows.length) {
    rows.push(li(t("crowd.withheld", { k: crowd.k, n: crowd.visits }), "fine"));
  }
  list.replaceChildren.apply(list, rows);
}

// Panel "Reading": personal pace, time left, state; wpm per page against the adult average.

import * as Charts from "./charts.js";
import { contract } from "./contract.js";
import { duration, field, missing, setField } from "./format.js";
import { t } from "./i18n.js";
import { CHART_HEIGHT } from "./page-state.js";

function paceOf(visit) {
  const found = ((visit.profile || {}).conclusions || []).find(function (c) { return c.key === "pace"; });
  return found ? found.params.wpm : null;
}

export function renderReading(panel, visit, cut) {
  const r = visit.reading;
  const wpm = paceOf(visit);
  setField(panel, "pace", wpm === null ? missing : wpm + " " + t("read.wpm"));
  setField(panel, "time-left", r && r.time_left_s !== null && wpm !== null ? duration(r.time_left_s) : missing);
  setField(panel, "chapter-left", r && r.chapter_time_left_s != null && wpm !== null ? duration(r.chapter_time_left_s) : missing);
  setField(panel, "reading-state", r ? t("read.state." + r.state) : missing);
  const chart = field(panel, "pace-chart");
  if (!visit.pages.length) {
    const note = document.createElement("p");
    note.className = "fine";
    note.textContent = t("read.none");
    chart.replaceChildren(note);
    return;
  }
  Charts.pace(chart, visit.pages, { label: t("panel.reading"), average: contract.adult_wpm, highlight: cut, height: CHART_HEIGHT, skimLabel: t("read.skim") });
  const legend = document.createElement("p");
  legend.className = "legend";
  [["average", "read.average"], ["skim", "read.skim"], ["dwell", "read.dwell"]].forEach(function (pair) {
    const key = document.createElement("span");
    key.className = "key " + pair[0];
    key.textContent = t(pair[1], { wpm: contract.adult_wpm });
    legend.appendChild(key);
  });
  chart.appendChild(legend);
}

// Panel "Emotion over time": valence per moment, coloured by label.

import * as Charts from "./charts.js";
import { expr, field } from "./format.js";
import { t } from "./i18n.js";
import { CHART_HEIGHT } from "./page-state.js";

export function renderTimeline(panel, visit, cursor) {
  const chart = field(panel, "timeline-chart");
  Charts.timeline(chart, visit.timeline, { label: t("panel.timeline"), cursor: cursor, height: CHART_HEIGHT });
  const legend = document.createElement("p");
  legend.className = "legend";
  Array.from(new Set(visit.timeline.map(function (p) { return p[1]; }))).forEach(function (label) {
    const key = document.createElement("span");
    key.className = "key dot expr-" + label;
    key.textContent = expr(label);
    legend.appendChild(key);
  });
  chart.appendChild(legend);
}

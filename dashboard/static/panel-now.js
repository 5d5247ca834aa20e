// Panel "Expression right now": the label, score, valence, arousal and the units behind it.

import { expr, field, fmt, li, missing, setField } from "./format.js";
import { t } from "./i18n.js";

export function renderNow(panel, visit) {
  const e = visit.expression;
  const label = setField(panel, "label", e ? expr(e.label) : t("waiting"));
  label.className = "big-label" + (e ? " expr-" + e.label : " waiting");
  field(panel, "score-bar").style.width = e ? Math.round(e.score * 100) + "%" : "0%";
  field(panel, "score-bar").className = "meter-fill" + (e ? " expr-" + e.label : "");
  setField(panel, "score", e ? fmt(e.score, 2) : missing);
  setField(panel, "valence", e ? t("now.valence") + " " + fmt(e.valence, 2) : "");
  setField(panel, "arousal", e ? t("now.arousal") + " " + fmt(e.arousal, 2) : "");
  const reasons = (e && e.reason_units) || [];
  field(panel, "reasons").replaceChildren.apply(field(panel, "reasons"), reasons.map(function (unit, i) {
    const shape = (e.reason_shapes || [])[i];
    const value = (e.reason_values || [])[i];
    return li(unit + (shape ? " — " + shape : "") + (value !== undefined ? " " + fmt(value, 2) : ""));
  }));
  setField(panel, "relative", e ? t(e.relative_to_rest ? "now.relative" : "now.absolute") : "");
}

// The profile of the shown visit: its head (pseudonym, phase, screen, consent, scopes, time)
// and every panel of the grid, each greyed out ("not shared") outside the visit's consent.

import { duration, field, missing, setField } from "./format.js";
import { currentLang, t } from "./i18n.js";
import { $, phase, shared, stepCut, elapsed } from "./page-state.js";
import { renderAttention } from "./panel-attention.js";
import { renderCrowd } from "./panel-crowd.js";
import { renderDataPoints } from "./panel-datapoints.js";
import { renderInterests } from "./panel-interests.js";
import { renderNow } from "./panel-now.js";
import { renderReactions } from "./panel-reactions.js";
import { renderReading } from "./panel-reading.js";
import { renderScore } from "./panel-score.js";
import { renderSummary } from "./panel-summary.js";
import { renderStepLabel } from "./panel-teacher.js";
import { renderTimeline } from "./panel-timeline.js";

export function renderProfile(visit) {
  const profileEl = $("profile");
  const p = phase(visit);
  setField(profileEl, "visit", visit.visit);
  const badge = setField(profileEl, "phase", t("visit." + p));
  badge.className = "badge " + p;
  setField(profileEl, "agent", visit.agent);
  setField(profileEl, "consent", visit.consent ? t("consent." + visit.consent) : missing);
  setField(profileEl, "scopes", (visit.scopes || []).map(function (s) { return t("scope." + s); }).join(", ") || missing);
  setField(profileEl, "elapsed", duration(elapsed(visit)));
  field(profileEl, "receipt").href = "/receipt/" + encodeURIComponent(visit.visit) + "?lang=" + currentLang();
  profileEl.dataset.visit = visit.visit;

  const cut = stepCut(visit);
  const start = visit.started !== null ? visit.started : visit.first_ts;
  const cursor = cut !== null && start !== null ? visit.pages[cut].ts - start : null;
  profileEl.querySelectorAll(".panel[data-scope]").forEach(function (panel) {
    panel.classList.toggle("not-shared", !shared(visit, panel.dataset.scope));
  });
  renderNow(profileEl.querySelector(".now"), visit);
  renderTimeline(profileEl.querySelector(".timeline"), visit, cursor);
  renderAttention(profileEl.querySelector(".attention"), visit);
  renderReading(profileEl.querySelector(".reading"), visit, cut);
  renderReactions(profileEl.querySelector(".reactions"), visit, cut);
  renderInterests(profileEl.querySelector(".interests"), visit);
  renderSummary(profileEl.querySelector(".summary"), visit);
  renderDataPoints(profileEl.querySelector(".datapoints"), visit);
  renderCrowd(profileEl.querySelector(".crowd"), visit);
  renderScore(profileEl.querySelector(".score-panel"), visit);
  renderStepLabel(visit, cut);
}

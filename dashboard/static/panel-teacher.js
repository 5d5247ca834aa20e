// The teacher's bar: pause, follow newest, step through a finished visit page by page, reset
// every visit, purge the shown one (admin POSTs, with the token from #token=… if given).

import { missing } from "./format.js";
import { keepAdminToken, postAdmin } from "./http.js";
import { t } from "./i18n.js";
import { $, body, mode, render, setStatus, state } from "./page-state.js";

function admin(path) {
  const note = $("teacher-note");
  note.textContent = "";
  return postAdmin(path)
    .then(function (result) {
      if (!result.ok) {
        note.textContent = t("teacher.reset_failed", { e: result.data.error || result.status });
      }
      return result.data;
    })
    .catch(function (error) { note.textContent = t("teacher.reset_failed", { e: String(error) }); });
}

function step(delta) {
  const visit = state.visits.get(state.shownId);
  if (!visit || visit.active || !visit.pages.length) {
    return;
  }
  state.followed = visit.visit; // stepping holds the visit on screen
  state.step = state.step === null ? (delta > 0 ? 0 : visit.pages.length - 1) : Math.max(0, Math.min(visit.pages.length - 1, state.step + delta));
  render(true);
}

export function pauseLabel() {
  $("pause").textContent = t(state.paused ? "teacher.resume" : "teacher.pause");
}

export function setupTeacher() {
  if (mode === "teacher") {
    $("teacher-bar").hidden = false;
    keepAdminToken();
  }
  $("pause").addEventListener("click", function () {
    state.paused = !state.paused;
    pauseLabel();
    body.classList.toggle("is-paused", state.paused);
    setStatus(state.streamState);
    render(true);
  });
  $("newest").addEventListener("click", function () {
    state.followed = null;
    state.step = null;
    render(true);
  });
  $("step-prev").addEventListener("click", function () { step(-1); });
  $("step-next").addEventListener("click", function () { step(1); });
  $("reset").addEventListener("click", function () { admin("/api/admin/reset"); });
  $("purge-visit").addEventListener("click", function () {
    if (state.shownId) {
      admin("/api/admin/purge/" + encodeURIComponent(state.shownId));
    }
  });
}

export function renderStepLabel(visit, cut) {
  if (mode !== "teacher") {
    return;
  }
  const label = $("step-label");
  if (cut === null) {
    label.textContent = t("step.none");
    return;
  }
  const page = visit.pages[cut];
  label.textContent = t("teacher.step", { i: cut + 1, n: visit.pages.length }) + ": " + t("topic." + page.topic) + " · " +
    (page.skim ? t("read.skim") : (page.wpm === null ? missing : Math.round(page.wpm) + " " + t("read.wpm")) + (page.dwell ? " · " + t("read.dwell") : ""));
}

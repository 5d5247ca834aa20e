// What the page holds and which visit it shows: the agents and visits from the stream, the
// visit followed, pause and step-through, and the render loop the panels ask for.

import { contract } from "./contract.js";
import { t } from "./i18n.js";

export const body = document.body;
export const mode = body.dataset.mode || "overview";

export function $(id) {
  return document.getElementById(id);
}

export const state = {
  agents: new Map(),
  visits: new Map(),
  arrival: new Map(), // visit id -> order first seen (newest is highest)
  nextArrival: 1,
  followed: mode === "receipt" ? body.dataset.visit : null,
  paused: false,
  crowd: null,
  feedback: { k: contract.crowd_k, screens: {} }, // "was the screen right?", per screen, from k visits
  step: null, // teacher: index into the shown visit's pages
  shownId: null,
  endedAt: new Map(), // visit id -> browser time it was first seen ended
  streamState: "connecting",
  health: null, // does this dashboard keep up: {behind, lag_ms, backlog, dropped} (panel-health.js)
  dirty: false,
  receiptGone: false,
};

window.onlookerMetrics = { delays: [], renders: 0 };

export const CHART_HEIGHT = mode === "exhibition" ? 150 : 190;

export function nowS() {
  return Date.now() / 1000;
}

export function phase(visit) {
  return visit.active ? "active" : visit.ended === null ? "interrupted" : "ended";
}

export function elapsed(visit) {
  const start = visit.started !== null ? visit.started : visit.first_ts;
  const end = visit.ended !== null ? visit.ended : visit.last_ts;
  return start !== null && end !== null ? Math.max(0, end - start) : null;
}

/** Whether the visitor consented to `scope` (a visit that names none shared everything). */
export function shared(visit, scope) {
  return !visit.scopes || visit.scopes.length === 0 || visit.scopes.indexOf(scope) >= 0;
}

/** Teacher: the index of the page stepped to in a finished visit, or null. */
export function stepCut(visit) {
  if (mode !== "teacher" || state.step === null || visit.active || !visit.pages.length) {
    return null;
  }
  return Math.min(state.step, visit.pages.length - 1);
}

export function crowdFor(visit) {
  return state.crowd && state.crowd.compare && state.crowd.compare.visit === visit.visit ? state.crowd : null;
}

function newest(filter) {
  let best = null;
  state.visits.forEach(function (visit, id) {
    if (filter(visit) && (best === null || state.arrival.get(id) > state.arrival.get(best.visit))) {
      best = visit;
    }
  });
  return best;
}

/** The visit to show: the one followed, else the newest active one, else the newest. */
export function currentVisit() {
  if (state.followed) {
    return state.visits.get(state.followed) || null;
  }
  const active = newest(function (v) { return v.active; });
  if (active) {
    return active;
  }
  if (mode === "exhibition") {
    // A finished visit stays a little while, then the attract screen takes over.
    return newest(function (v) {
      const ended = state.endedAt.get(v.visit);
      return ended !== undefined && nowS() - ended < contract.exhibition_hold_s;
    });
  }
  return newest(function () { return true; });
}

export function setStatus(kind) {
  state.streamState = kind;
  const shown = state.paused ? "paused" : kind;
  const line = $("stream-status");
  line.dataset.state = shown;
  line.textContent = t("stream." + shown);
}

// --- the render loop: dashboard.js draws, any module may ask -----------------------------------

let draw = function () {};

export function setRenderer(renderer) {
  draw = renderer;
}

/** Draw now; `force` draws even while paused. */
export function render(force) {
  draw(force);
}

/** Draw soon, once, however many changes arrive before then. */
export function scheduleRender() {
  if (state.dirty) {
    return;
  }
  state.dirty = true;
  const run = function () {
    if (state.dirty) {
      state.dirty = false;
      draw(false);
    }
  };
  window.requestAnimationFrame(run);
  window.setTimeout(run, 120); // rAF pauses in a hidden tab; the page must still keep up
}

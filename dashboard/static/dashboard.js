// Onlooker dashboard, the page's entry module: follows /api/stream and shows what the screen
// learned about a visitor. Each panel is a module of its own (panel-*.js, profile.js); this one
// holds the event stream, the language, the controls and the render loop that calls them.
// Every value from the wire is untrusted text: it only ever reaches the page as textContent or
// as an SVG attribute of a checked number. No markup is ever built from strings.

import { contract } from "./contract.js";
import { currentLang, setLang, t } from "./i18n.js";
import {
  $, body, currentVisit, mode, nowS, scheduleRender, setRenderer, setStatus, state,
} from "./page-state.js";
import { renderAgents, showAgent } from "./panel-agents.js";
import { scheduleCrowd } from "./panel-crowd.js";
import { renderFeedback } from "./panel-feedback.js";
import { showHealth } from "./panel-health.js";
import { setupRaw } from "./panel-raw.js";
import { renderReceipt } from "./panel-receipt.js";
import { pauseLabel, setupTeacher } from "./panel-teacher.js";
import { orderVisitRows, removeVisitRow, renderVisits, showVisitRow } from "./panel-visits.js";
import { renderProfile } from "./profile.js";
import { fillSource } from "./sources.js";

// --- language -----------------------------------------------------------------------------------

function safeStorage(key, value) {
  try {
    if (value === undefined) {
      return window.localStorage.getItem(key);
    }
    window.localStorage.setItem(key, value);
  } catch (error) {
    return null; // storage off (private mode, file://): the default is fine
  }
  return null;
}

setLang(body.dataset.lang || safeStorage("onlooker-lang") || ((navigator.language || "").startsWith("da") ? "da" : "en"));

// The facts a fixed text states, from the server: the texts themselves never copy them.
const ratings = contract.score.ratings;
const TEXT_PARAMS = {
  "attract.foot": { minutes: Math.round(contract.retention_s / 60) },
  "score.explain": { start: contract.score.start, best: ratings[0][1], worst: ratings[ratings.length - 1][1] },
};

function applyTexts() {
  document.documentElement.lang = currentLang();
  document.querySelectorAll("[data-i18n]").forEach(function (node) {
    node.textContent = t(node.dataset.i18n, TEXT_PARAMS[node.dataset.i18n]);
  });
  document.querySelectorAll(".source").forEach(fillSource);
  pauseLabel();
  setStatus(state.streamState);
  showHealth();
  state.agents.forEach(showAgent);
  state.visits.forEach(showVisitRow);
  render(true);
}

// --- rendering ------------------------------------------------------------------------------------

function render(force) {
  if (state.paused && !force) {
    return;
  }
  window.onlookerMetrics.renders += 1;
  if (mode === "receipt") {
    renderReceipt();
    return;
  }
  const visit = currentVisit();
  const idle = visit === null;
  $("attract").hidden = !(idle && mode === "exhibition");
  $("profile-empty").hidden = !idle || mode === "exhibition";
  $("profile").hidden = idle;
  body.classList.toggle("is-idle", idle);
  if (visit && visit.visit !== state.shownId) {
    state.step = null;
    state.crowd = null;
    scheduleCrowd(0);
  }
  state.shownId = visit ? visit.visit : null;
  if (visit) {
    renderProfile(visit);
    if (visit.last_ts) {
      const delays = window.onlookerMetrics.delays;
      delays.push(nowS() - visit.last_ts);
      if (delays.length > 5000) {
        delays.splice(0, 1000);
      }
    }
  }
  renderFeedback();
  renderVisits();
  renderAgents();
}

setRenderer(render);

// --- controls -------------------------------------------------------------------------------------

function setupControls() {
  $("lang-switch").addEventListener("click", function () {
    safeStorage("onlooker-lang", setLang(currentLang() === "en" ? "da" : "en"));
    applyTexts();
  });
  $("score-toggle").addEventListener("change", function () { render(true); });
  document.querySelectorAll("[data-mode-link]").forEach(function (link) {
    link.classList.toggle("current", link.dataset.modeLink === mode);
    link.addEventListener("click", function (event) {
      event.preventDefault();
      const url = new URL(window.location.href);
      url.searchParams.set("mode", link.dataset.modeLink);
      url.searchParams.set("lang", currentLang());
      window.location.assign(url.toString());
    });
  });
  $("print").addEventListener("click", function () { window.print(); });
  setupRaw();
  setupTeacher();
}

// --- the event stream -----------------------------------------------------------------------------

function noteVisit(visit) {
  if (!state.arrival.has(visit.visit)) {
    state.arrival.set(visit.visit, state.nextArrival++);
  }
  if (!visit.active && !state.endedAt.has(visit.visit)) {
    state.endedAt.set(visit.visit, nowS());
  } else if (visit.active) {
    state.endedAt.delete(visit.visit);
  }
  state.visits.set(visit.visit, visit);
  if (mode !== "receipt") {
    showVisitRow(visit);
  }
}

function forgetVisit(id) {
  // "Forget me", withdrawal, a reset or the end of retention: nothing of it may stay.
  state.visits.delete(id);
  state.arrival.delete(id);
  state.endedAt.delete(id);
  removeVisitRow(id);
  if (state.followed === id && mode !== "receipt") {
    state.followed = null;
  }
  if (mode === "receipt" && id === body.dataset.visit) {
    state.receiptGone = true;
  }
}

function showSnapshot(snapshot) {
  const ids = new Set(snapshot.visits.map(function (v) { return v.visit; }));
  Array.from(state.visits.keys()).forEach(function (id) {
    if (!ids.has(id)) {
      forgetVisit(id);
    }
  });
  snapshot.agents.forEach(function (agent) {
    state.agents.set(agent.agent, agent);
    showAgent(agent);
  });
  snapshot.visits.slice().reverse().forEach(noteVisit); // newest first in the snapshot
  if (snapshot.feedback) {
    state.feedback = snapshot.feedback;
  }
  showHealth(snapshot.dashboard_health);
  orderVisitRows();
}

function on(source, kind, handler) {
  source.addEventListener(kind, function (event) {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch (error) {
      console.warn("unreadable " + kind + " event", error);
      return;
    }
    handler(data);
    scheduleRender();
  });
}

function connect() {
  const source = new EventSource("/api/stream");
  source.addEventListener("open", function () { setStatus("live"); scheduleRender(); });
  source.addEventListener("error", function () {
    setStatus("reconnecting"); // it retries by itself after a dropped stream …
    if (source.readyState === EventSource.CLOSED) {
      // … but not after a refusal (503: too many open streams): try again when told to.
      window.setTimeout(connect, contract.stream_retry_s * 1000);
    }
  });
  on(source, "snapshot", showSnapshot);
  on(source, "agent", function (agent) {
    state.agents.set(agent.agent, agent);
    showAgent(agent);
  });
  on(source, "visit", function (visit) {
    noteVisit(visit);
    orderVisitRows();
  });
  on(source, "purge", function (purge) { forgetVisit(purge.visit); });
  on(source, "dashboard_health", showHealth);
  on(source, "feedback", function (change) {
    if (change.screen) {
      state.feedback.screens[change.agent] = change.screen;
    } else {
      delete state.feedback.screens[change.agent];
    }
  });
}

// --- start ----------------------------------------------------------------------------------------

// A finished visit leaves the exhibition screen after a while even when nothing arrives.
window.setInterval(function () {
  if (mode === "exhibition" || mode === "overview") {
    scheduleRender();
  }
}, 1000);

if (mode !== "exhibition" && mode !== "receipt") {
  // Teacher and overview: a panel of its own to discuss; exhibition: on the attract screen.
  const board = $("feedback");
  board.classList.add("panel");
  $("profile").after(board);
} else if (mode === "receipt") {
  $("feedback").hidden = true;
}
setupControls();
applyTexts();
connect();
scheduleCrowd();

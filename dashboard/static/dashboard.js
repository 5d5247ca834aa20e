// Onlooker dashboard: follows /api/stream and shows what the screen learned about a visitor.
// Every value from the wire is untrusted text: it only ever reaches the page as textContent
// or as an SVG attribute of a checked number. No markup is ever built from strings.
"use strict";

(function () {
  const body = document.body;
  const mode = body.dataset.mode || "overview";
  const TEXTS = window.OnlookerTexts;
  const Charts = window.OnlookerCharts;
  const EXPRESSIONS = ["neutral", "joy", "surprise", "anger", "sadness", "fear", "disgust", "contempt"];
  const SOURCES = {
    facebook: "Facebook US 9,681,166 B2",
    verizon: "Verizon US 2012/0304206 A1",
    amazon_timer: "Amazon US 9,069,332 B1",
    amazon_speed: "Amazon US 9,544,204",
    amazon_eye: "Amazon US 9,256,784 B1",
    ebook_systems: "E-Book Systems US 2003/0210226",
  };
  const ADULT_WPM = 238;
  const STASI_PER_MONTH = 173081;
  const FACEBOOK_PER_MONTH = 1.2e9;
  const MONTH_S = 30 * 86400;
  const HOLD_ENDED_S = Number(body.dataset.hold || 20); // exhibition: a finished visit stays this long
  const MAX_VISITS_SHOWN = 24;
  const CROWD_EVERY_MS = 3000;
  const missing = "—";

  const $ = function (id) { return document.getElementById(id); };
  const profileEl = $("profile");
  const agentsBody = $("agents-body");
  const visitsList = $("visits-list");
  const visitTemplate = $("visit-template");
  const streamStatus = $("stream-status");

  const state = {
    agents: new Map(),
    visits: new Map(),
    arrival: new Map(), // visit id -> order first seen (newest is highest)
    nextArrival: 1,
    followed: mode === "receipt" ? body.dataset.visit : null,
    paused: false,
    crowd: null,
    feedback: { k: 5, screens: {} }, // "was the screen right?", per screen, from k visits
    step: null, // teacher: index into the shown visit's pages
    shownId: null,
    endedAt: new Map(), // visit id -> browser time it was first seen ended
    streamState: "connecting",
    dirty: false,
    receiptGone: false,
  };
  const agentRows = new Map();
  const visitRows = new Map();
  window.onlookerMetrics = { delays: [], renders: 0 };

  // --- language -----------------------------------------------------------------------------

  let lang = body.dataset.lang || safeStorage("onlooker-lang") || ((navigator.language || "").startsWith("da") ? "da" : "en");
  if (!TEXTS[lang]) {
    lang = "en";
  }

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

  function t(key, params) {
    let text = (TEXTS[lang] && TEXTS[lang][key]) || TEXTS.en[key] || key;
    if (params) {
      text = text.replace(/\{(\w+)\}/g, function (whole, name) {
        return params[name] === undefined || params[name] === null ? missing : String(params[name]);
      });
    }
    return text;
  }

  function applyTexts() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-i18n]").forEach(function (node) {
      node.textContent = t(node.dataset.i18n);
    });
    document.querySelectorAll(".source").forEach(fillSource);
    $("pause").textContent = t(state.paused ? "teacher.resume" : "teacher.pause");
    setStatus(state.streamState);
    state.agents.forEach(showAgent);
    state.visits.forEach(showVisitRow);
    render(true);
  }

  // --- small helpers ------------------------------------------------------------------------

  function fmt(value, digits) {
    return value === null || value === undefined ? missing : Number(value).toFixed(digits);
  }

  function grouped(value) {
    return Math.round(value).toLocaleString(lang === "da" ? "da-DK" : "en-GB");
  }

  function pct(share) {
    return Math.round(share) + " %";
  }

  function clock(ts) {
    return ts === null || ts === undefined ? missing : new Date(ts * 1000).toLocaleTimeString(lang === "da" ? "da-DK" : "en-GB");
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) {
      return missing;
    }
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) {
      return s + " " + t("unit.s");
    }
    if (s >= 600) {
      return Math.round(s / 60) + " " + t("unit.min");
    }
    return Math.floor(s / 60) + " " + t("unit.min") + " " + (s % 60) + " " + t("unit.s");
  }

  function field(root, name) {
    return root.querySelector('[data-field="' + name + '"]');
  }

  function setField(root, name, text) {
    const node = field(root, name);
    if (node) {
      node.textContent = text;
    }
    return node;
  }

  function li(text, cls) {
    const node = document.createElement("li");
    if (cls) {
      node.className = cls;
    }
    node.textContent = text;
    return node;
  }

  function expr(label) {
    return t("expr." + label);
  }

  function whatOf(params) {
    return params.topic ? t("what.page_on", { topic: t("topic." + params.topic) }) : t("what.item", { item: params.item });
  }

  function setStatus(kind) {
    state.streamState = kind;
    const shown = state.paused ? "paused" : kind;
    streamStatus.dataset.state = shown;
    streamStatus.textContent = t("stream." + shown);
  }

  // A source line: the patent that claims the inference, and the raw message one click away.
  function fillSource(node) {
    const from = document.createElement("span");
    from.textContent = t("source.from") + " " + (SOURCES[node.dataset.source] || node.dataset.source) + " · ";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "raw-button";
    button.dataset.raw = node.dataset.raw;
    button.dataset.testid = "raw-" + node.dataset.raw;
    button.textContent = t("source.raw");
    node.replaceChildren(from, button);
  }

  // --- following ----------------------------------------------------------------------------

  function nowS() {
    return Date.now() / 1000;
  }

  function phase(visit) {
    return visit.active ? "active" : visit.ended === null ? "interrupted" : "ended";
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

  function currentVisit() {
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
        return ended !== undefined && nowS() - ended < HOLD_ENDED_S;
      });
    }
    return newest(function () { return true; });
  }

  // --- agents -------------------------------------------------------------------------------

  function agentRow(id) {
    let row = agentRows.get(id);
    if (row) {
      return row;
    }
    row = document.createElement("tr");
    row.dataset.testid = "agent-" + id;
    for (const name of ["agent", "status", "fps", "viewers", "clock", "lost", "model", "source"]) {
      const cell = document.createElement(name === "agent" ? "th" : "td");
      if (name === "agent") {
        cell.scope = "row";
      }
      cell.dataset.field = name;
      row.appendChild(cell);
    }
    agentRows.set(id, row);
    Array.from(agentRows.keys()).sort().forEach(function (other) {
      agentsBody.appendChild(agentRows.get(other)); // re-appending keeps rows sorted by id
    });
    return row;
  }

  function showAgent(agent) {
    const row = agentRow(agent.agent);
    setField(row, "agent", agent.agent);
    const status = setField(row, "status", t(agent.online ? "agents.online" : "agents.offline"));
    status.className = agent.online ? "status online" : "status offline";
    status.dataset.state = agent.online ? "online" : "offline";
    row.classList.toggle("is-offline", !agent.online);
    setField(row, "fps", fmt(agent.fps, 1));
    setField(row, "viewers", agent.viewers === null || agent.viewers === undefined ? missing : String(agent.viewers));
    const skew = setField(row, "clock", agent.clock_skewed ? t("agents.skewed", { s: fmt(agent.clock_skew_s, 1) }) : agent.clock_skew_s === null ? missing : t("agents.clock_ok"));
    skew.className = agent.clock_skewed ? "flag" : "";
    const lost = setField(row, "lost", String(agent.gaps || 0) + (agent.duplicates ? " (+" + agent.duplicates + " dup)" : ""));
    lost.className = agent.gaps ? "flag" : "";
    let model = agent.model === null || agent.model === undefined ? missing : agent.model;
    if (agent.model_version) {
      model += " " + agent.model_version;
    }
    setField(row, "model", model);
    setField(row, "source", agent.source || missing);
  }

  // --- visit list ---------------------------------------------------------------------------

  function showVisitRow(visit) {
    let row = visitRows.get(visit.visit);
    if (!row) {
      row = visitTemplate.content.firstElementChild.cloneNode(true);
      row.dataset.testid = "visit-" + visit.visit;
      row.dataset.visit = visit.visit;
      row.querySelector(".visit-pick").addEventListener("click", function () {
        state.followed = visit.visit;
        state.step = null;
        render(true);
      });
      visitRows.set(visit.visit, row);
    }
    const p = phase(visit);
    setField(row, "visit", visit.visit);
    setField(row, "agent", visit.agent);
    setField(row, "started", clock(visit.started));
    const expression = visit.expression || {};
    setField(row, "expression", expression.label ? expr(expression.label) : missing);
    const badge = setField(row, "active", t("visit." + p));
    badge.className = "badge " + p;
    row.classList.toggle("is-followed", visit.visit === state.shownId);
  }

  function orderVisitRows() {
    const ids = Array.from(visitRows.keys()).sort(function (a, b) { return state.arrival.get(b) - state.arrival.get(a); });
    ids.slice(MAX_VISITS_SHOWN).forEach(function (id) {
      visitRows.get(id).remove();
      visitRows.delete(id);
    });
    const shown = ids.slice(0, MAX_VISITS_SHOWN);
    const current = Array.from(visitsList.children).map(function (node) { return node.dataset.visit; });
    if (current.join() !== shown.join()) {
      visitsList.replaceChildren.apply(visitsList, shown.map(function (id) { return visitRows.get(id); }));
    }
  }

  // --- the profile --------------------------------------------------------------------------

  function shared(visit, scope) {
    return !visit.scopes || visit.scopes.length === 0 || visit.scopes.indexOf(scope) >= 0;
  }

  function renderNow(panel, visit) {
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

  function renderAttention(panel, visit) {
    const a = visit.attention;
    const yesNo = function (v) { return v === null || v === undefined ? missing : t(v ? "att.yes" : "att.no"); };
    setField(panel, "present", a ? yesNo(a.present) : missing);
    setField(panel, "looking", a ? yesNo(a.looking) : missing);
    setField(panel, "look_aways", a ? String(a.look_aways) : missing);
    setField(panel, "blinks", a ? String(a.blinks) : missing);
    setField(panel, "distance", a && a.distance_cm !== null ? Math.round(a.distance_cm) + " " + t("unit.cm") : missing);
    setField(panel, "faces", a ? String(a.faces) : missing);
    const s = visit.attention_summary;
    setField(panel, "looking-share", s && s.time_present_s ? t("att.share", { share: pct(s.looking_share * 100) }) : "");
  }

  function paceOf(visit) {
    const found = ((visit.profile || {}).conclusions || []).find(function (c) { return c.key === "pace"; });
    return found ? found.params.wpm : null;
  }

  function renderReading(panel, visit, cut) {
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
    } else {
      Charts.pace(chart, visit.pages, { label: t("panel.reading"), average: ADULT_WPM, highlight: cut, height: CHART_HEIGHT, skimLabel: t("read.skim") });
      const legend = document.createElement("p");
      legend.className = "legend";
      [["average", "read.average"], ["skim", "read.skim"], ["dwell", "read.dwell"]].forEach(function (pair) {
        const key = document.createElement("span");
        key.className = "key " + pair[0];
        key.textContent = t(pair[1]);
        legend.appendChild(key);
      });
      chart.appendChild(legend);
    }
  }

  const CHART_HEIGHT = mode === "exhibition" ? 150 : 190;

  function renderTimeline(panel, visit, cursor) {
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

  function renderReactions(panel, visit, cut) {
    const pages = {};
    visit.pages.forEach(function (p) { pages[p.item] = p; });
    const highlight = cut !== null && visit.pages[cut] ? visit.pages[cut].item : null;
    const rows = Object.keys(visit.items).filter(function (item) { return visit.items[item].reaction; }).map(function (item) {
      const reaction = visit.items[item].reaction;
      const row = document.createElement("li");
      row.dataset.item = item;
      row.classList.toggle("current", item === highlight);
      const name = document.createElement("span");
      name.className = "item-name";
      name.textContent = pages[item] ? t("topic." + pages[item].topic) + " · " + item : item;
      let top = 1;
      for (let k = 2; k < EXPRESSIONS.length; k++) {
        if (reaction.mean[k] > reaction.mean[top]) {
          top = k;
        }
      }
      const label = document.createElement("span");
      label.className = "item-label expr-" + EXPRESSIONS[top];
      label.textContent = expr(EXPRESSIONS[top]) + " " + fmt(reaction.mean[top], 2);
      const bar = document.createElement("span");
      bar.className = "stack";
      reaction.mean.forEach(function (share, k) {
        if (share > 0.005) {
          const part = document.createElement("span");
          part.className = "part expr-" + EXPRESSIONS[k];
          part.style.width = Math.round(share * 1000) / 10 + "%";
          part.title = expr(EXPRESSIONS[k]) + " " + fmt(share, 2);
          bar.appendChild(part);
        }
      });
      row.append(name, label, bar);
      return row;
    });
    const list = field(panel, "reactions");
    if (!rows.length) {
      list.replaceChildren(li(t("react.none"), "fine"));
    } else {
      list.replaceChildren.apply(list, rows);
    }
  }

  function renderInterests(panel, visit) {
    const list = field(panel, "interests");
    const topics = Object.keys(visit.interests || {});
    if (!topics.length) {
      list.replaceChildren(li(t("interest.none"), "fine"));
      return;
    }
    list.replaceChildren.apply(list, topics.map(function (topic) {
      const share = visit.interests[topic];
      const row = document.createElement("li");
      const name = document.createElement("span");
      name.className = "bar-name";
      name.textContent = t("topic." + topic);
      const track = document.createElement("span");
      track.className = "track";
      const fill = document.createElement("span");
      fill.className = "fill";
      fill.style.width = Math.round(share * 100) + "%";
      track.appendChild(fill);
      const value = document.createElement("span");
      value.className = "bar-value";
      value.textContent = pct(share * 100);
      row.append(name, track, value);
      return row;
    }));
  }

  function conclusionText(c) {
    const p = Object.assign({}, c.params);
    if (p.label) {
      p.label = expr(p.label);
    }
    if (p.topic && c.key === "interest") {
      p.topic = t("topic." + p.topic);
    }
    if (p.share !== undefined) {
      p.share = pct(p.share);
    }
    if (p.percentile !== undefined) {
      p.percentile = pct(p.percentile);
    }
    if (p.item !== undefined) {
      p.what = whatOf(c.params);
    }
    // A pace is "faster" or "slower" only when the dashboard's evidence rule says so.
    let key = c.key === "pace" ? "c.pace." + (p.verdict === "faster" || p.verdict === "slower" ? p.verdict : "unsure") : "c." + c.key;
    if (c.key === "look_aways" && p.count === 1) {
      key = "c.look_aways.one";
    }
    let text = t(key, p);
    if (c.key === "moved_by") {
      text = text.charAt(0).toUpperCase() + text.slice(1);
    }
    return text;
  }

  // How much a conclusion rests on: pages and seconds, or the visits behind a crowd figure.
  function evidenceText(e) {
    if (!e) {
      return "";
    }
    if (e.visits) {
      return t("c.evidence.visits", { visits: e.visits });
    }
    const seconds = e.seconds === null || e.seconds === undefined ? null : Math.round(e.seconds);
    if (e.pages && seconds !== null) {
      return e.pages === 1 ? t("c.evidence.page", { seconds: seconds }) : t("c.evidence.pages", { pages: e.pages, seconds: seconds });
    }
    return seconds !== null ? t("c.evidence.seconds", { seconds: seconds }) : "";
  }

  function conclusionItem(c) {
    const row = document.createElement("li");
    row.dataset.key = c.key;
    const sentence = document.createElement("span");
    sentence.className = "sentence";
    sentence.textContent = conclusionText(c);
    const source = document.createElement("span");
    source.className = "who";
    source.textContent = t("c.audience." + c.audience) + " · " + (SOURCES[c.source] || c.source);
    row.append(sentence, source);
    const basis = evidenceText(c.evidence);
    if (basis) {
      const evidence = document.createElement("span");
      evidence.className = "evidence";
      evidence.dataset.testid = "evidence";
      evidence.textContent = basis;
      row.appendChild(evidence);
    }
    return row;
  }

  function crowdFor(visit) {
    return state.crowd && state.crowd.compare && state.crowd.compare.visit === visit.visit ? state.crowd : null;
  }

  function renderSummary(panel, visit) {
    const list = field(panel, "conclusions");
    const crowd = crowdFor(visit);
    const items = ((visit.profile || {}).conclusions || []).concat(crowd ? crowd.conclusions || [] : []);
    if (!items.length) {
      list.replaceChildren(li(t("waiting"), "fine"));
    } else {
      list.replaceChildren.apply(list, items.map(conclusionItem));
    }
  }

  function elapsed(visit) {
    const start = visit.started !== null ? visit.started : visit.first_ts;
    const end = visit.ended !== null ? visit.ended : visit.last_ts;
    return start !== null && end !== null ? Math.max(0, end - start) : null;
  }

  function renderDataPoints(panel, visit) {
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

  function renderCrowd(panel, visit) {
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

  function renderScore(panel, visit) {
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
    totalFormula.textContent = "AAA ≥ 1050 · AA ≥ 1030 · A ≥ 960 · B ≥ 850 · C ≥ 600 · D";
    const totalPoints = document.createElement("td");
    totalPoints.className = "points";
    totalPoints.textContent = score.points + " " + score.rating;
    total.append(totalName, totalFormula, totalPoints);
    rows.push(total);
    const tbody = field(panel, "score-terms");
    tbody.replaceChildren.apply(tbody, rows);
  }

  function stepCut(visit) {
    if (mode !== "teacher" || state.step === null || visit.active || !visit.pages.length) {
      return null;
    }
    return Math.min(state.step, visit.pages.length - 1);
  }

  function renderProfile(visit) {
    const p = phase(visit);
    setField(profileEl, "visit", visit.visit);
    const badge = setField(profileEl, "phase", t("visit." + p));
    badge.className = "badge " + p;
    setField(profileEl, "agent", visit.agent);
    setField(profileEl, "consent", visit.consent ? t("consent." + visit.consent) : missing);
    setField(profileEl, "scopes", (visit.scopes || []).map(function (s) { return t("scope." + s); }).join(", ") || missing);
    setField(profileEl, "elapsed", duration(elapsed(visit)));
    field(profileEl, "receipt").href = "/receipt/" + encodeURIComponent(visit.visit) + "?lang=" + lang;
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

  function renderStepLabel(visit, cut) {
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

  function renderReceipt() {
    const visit = state.visits.get(body.dataset.visit);
    const root = $("receipt");
    root.hidden = false;
    root.querySelector(".receipt-gone").hidden = !(state.receiptGone || (!visit && state.streamState === "live"));
    if (!visit) {
      ["r-visit", "r-when", "r-scopes", "r-messages", "r-points", "r-deleted"].forEach(function (name) { setField(root, name, ""); });
      field(root, "r-conclusions").replaceChildren();
      return;
    }
    setField(root, "r-visit", visit.visit);
    setField(root, "r-when", clock(visit.started) + " – " + (visit.ended !== null ? clock(visit.ended) : "…") + " (" + duration(elapsed(visit)) + ")");
    setField(root, "r-scopes", (visit.scopes || []).map(function (s) { return t("scope." + s); }).join(", "));
    const counts = Object.keys(visit.counts || {}).sort().map(function (k) { return k + " " + visit.counts[k]; }).join(", ");
    setField(root, "r-messages", visit.messages + " (" + counts + ")");
    setField(root, "r-points", grouped(visit.data_points));
    const list = field(root, "r-conclusions");
    list.replaceChildren.apply(list, ((visit.profile || {}).conclusions || []).map(conclusionItem));
    const retention = Number(body.dataset.retention || 600);
    const last = visit.ended !== null ? visit.ended : visit.last_ts;
    setField(root, "r-deleted", last ? t("receipt.deleted", { t: clock(last + retention) }) : "");
  }

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
    profileEl.hidden = idle;
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
    visitRows.forEach(function (row, id) { row.classList.toggle("is-followed", id === state.shownId); });
    $("agents-empty").hidden = agentRows.size > 0;
    $("visits-empty").hidden = visitRows.size > 0;
  }

  function scheduleRender() {
    if (state.dirty) {
      return;
    }
    state.dirty = true;
    const run = function () {
      if (state.dirty) {
        state.dirty = false;
        render(false);
      }
    };
    window.requestAnimationFrame(run);
    window.setTimeout(run, 120); // rAF pauses in a hidden tab; the page must still keep up
  }

  // --- "was the screen right?" ----------------------------------------------------------------
  // Totals per screen and conclusion, never one visitor's answers; each withheld below k.

  const GRADED_KINDS = ["expression", "attention", "pace", "skims", "interests", "time_left"];

  function renderFeedback() {
    const root = $("feedback-screens");
    const k = state.feedback.k;
    const screens = state.feedback.screens || {};
    const agents = Object.keys(screens).sort();
    const blocks = agents.map(function (agent) {
      const screen = screens[agent];
      const block = document.createElement("div");
      block.className = "feedback-screen";
      block.dataset.agent = agent;
      const head = document.createElement("h3");
      head.textContent = t("feedback.screen", { agent: agent, n: screen.visits });
      block.appendChild(head);
      const list = document.createElement("ul");
      list.className = "feedback-list";
      GRADED_KINDS.forEach(function (kind) {
        const figure = screen.kinds[kind];
        if (!figure) {
          return;
        }
        if (figure.value === null) {
          list.appendChild(li(t("feedback.kind." + kind) + ": " + t("feedback.withheld", { k: k, n: figure.visits }), "feedback-withheld"));
          return;
        }
        const v = figure.value;
        const line = li(t("feedback.right", { what: t("feedback.kind." + kind), right: v.right, n: v.graded }), "feedback-figure");
        line.dataset.kind = kind;
        const behind = document.createElement("span");
        behind.className = "fine";
        behind.textContent = " " + t("feedback.behind", { visits: figure.visits, cant: v.cant_say });
        line.appendChild(behind);
        list.appendChild(line);
      });
      block.appendChild(list);
      const confusion = screen.confusion;
      if (confusion.value !== null) {
        block.appendChild(confusionTable(confusion));
      } else if (confusion.visits > 0 || screen.kinds.feeling) {
        block.appendChild(li(t("feedback.felt") + ": " + t("feedback.withheld", { k: k, n: confusion.visits }), "feedback-withheld"));
      }
      return block;
    });
    if (!blocks.length) {
      const none = document.createElement("p");
      none.className = "fine";
      none.textContent = t("feedback.none");
      blocks.push(none);
    }
    root.replaceChildren.apply(root, blocks);
  }

  function confusionTable(confusion) {
    const table = document.createElement("table");
    table.className = "confusion";
    table.dataset.testid = "confusion";
    const caption = document.createElement("caption");
    caption.textContent = t("feedback.confusion", { visits: confusion.visits });
    table.appendChild(caption);
    const rows = confusion.value;
    const felt = [];
    Object.keys(rows).forEach(function (saw) {
      Object.keys(rows[saw]).forEach(function (word) {
        if (felt.indexOf(word) < 0) {
          felt.push(word);
        }
      });
    });
    felt.sort();
    const head = document.createElement("tr");
    const corner = document.createElement("th");
    corner.scope = "col";
    corner.textContent = t("feedback.saw_felt");
    head.appendChild(corner);
    felt.forEach(function (word) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = expr(word);
      head.appendChild(th);
    });
    const thead = document.createElement("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    const tbody = document.createElement("tbody");
    Object.keys(rows).sort().forEach(function (saw) {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = expr(saw);
      tr.appendChild(th);
      felt.forEach(function (word) {
        const td = document.createElement("td");
        td.textContent = String(rows[saw][word] || 0);
        td.classList.toggle("agree", word === saw);
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    return table;
  }

  // --- crowd --------------------------------------------------------------------------------

  let crowdTimer = null;

  function scheduleCrowd(delay) {
    window.clearTimeout(crowdTimer);
    crowdTimer = window.setTimeout(fetchCrowd, delay);
  }

  function fetchCrowd() {
    const id = state.shownId;
    if (!id || mode === "receipt") {
      scheduleCrowd(CROWD_EVERY_MS);
      return;
    }
    fetch("/api/crowd?visit=" + encodeURIComponent(id), { headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (crowd) {
        if (crowd && state.shownId === id) {
          state.crowd = crowd;
          scheduleRender();
        }
      })
      .catch(function (error) { console.warn("crowd figures unavailable", error); })
      .finally(function () { scheduleCrowd(CROWD_EVERY_MS); });
  }

  // --- raw messages -------------------------------------------------------------------------

  function showRaw(key) {
    const id = state.shownId || body.dataset.visit;
    const dialog = $("raw-dialog");
    const payload = $("raw-payload");
    const meta = $("raw-meta");
    const visit = state.visits.get(id);
    const cut = visit ? stepCut(visit) : null;
    const itemKey = cut !== null && (key === "page" || key === "reaction" || key === "attention_summary") ? key + ":" + visit.pages[cut].item : null;
    fetch("/api/visits/" + encodeURIComponent(id) + "/raw", { headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : { raw: {} }; })
      .then(function (data) {
        const text = (itemKey && data.raw[itemKey]) || data.raw[key];
        payload.textContent = text || t("raw.missing");
        meta.textContent = text ? t("raw.bytes", { n: new TextEncoder().encode(text).length }) : "";
        if (!dialog.open) {
          dialog.showModal();
        }
      })
      .catch(function (error) { console.warn("raw message unavailable", error); });
  }

  // --- teacher ------------------------------------------------------------------------------

  function adminHeaders() {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    let token = null;
    try {
      token = window.sessionStorage.getItem("onlooker-token");
    } catch (error) {
      token = null;
    }
    if (token) {
      headers.Authorization = "Bearer " + token;
    }
    return headers;
  }

  function admin(path) {
    const note = $("teacher-note");
    note.textContent = "";
    return fetch(path, { method: "POST", headers: adminHeaders(), body: "{}" })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) {
            note.textContent = t("teacher.reset_failed", { e: data.error || response.status });
          }
          return data;
        });
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

  function setupControls() {
    $("lang-switch").addEventListener("click", function () {
      lang = lang === "en" ? "da" : "en";
      safeStorage("onlooker-lang", lang);
      applyTexts();
    });
    $("score-toggle").addEventListener("change", function () { render(true); });
    document.querySelectorAll("[data-mode-link]").forEach(function (link) {
      link.classList.toggle("current", link.dataset.modeLink === mode);
      link.addEventListener("click", function (event) {
        event.preventDefault();
        const url = new URL(window.location.href);
        url.searchParams.set("mode", link.dataset.modeLink);
        url.searchParams.set("lang", lang);
        window.location.assign(url.toString());
      });
    });
    document.addEventListener("click", function (event) {
      const button = event.target.closest ? event.target.closest(".raw-button") : null;
      if (button) {
        showRaw(button.dataset.raw);
      }
    });
    $("print").addEventListener("click", function () { window.print(); });
    if (mode === "teacher") {
      $("teacher-bar").hidden = false;
      const match = /token=([A-Za-z0-9_\-.~]+)/.exec(window.location.hash);
      if (match) {
        try {
          window.sessionStorage.setItem("onlooker-token", match[1]);
        } catch (error) {
          console.warn("cannot keep the admin token", error);
        }
        history.replaceState(null, "", window.location.pathname + window.location.search);
      }
    }
    $("pause").addEventListener("click", function () {
      state.paused = !state.paused;
      $("pause").textContent = t(state.paused ? "teacher.resume" : "teacher.pause");
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

  // --- stream -------------------------------------------------------------------------------

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
    const row = visitRows.get(id);
    if (row) {
      row.remove();
      visitRows.delete(id);
    }
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
        // … but not after a refusal (503: too many open streams): try again in a while.
        window.setTimeout(connect, 5000);
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
    on(source, "feedback", function (change) {
      if (change.screen) {
        state.feedback.screens[change.agent] = change.screen;
      } else {
        delete state.feedback.screens[change.agent];
      }
    });
  }

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
    profileEl.after(board);
  } else if (mode === "receipt") {
    $("feedback").hidden = true;
  }
  setupControls();
  applyTexts();
  connect();
  scheduleCrowd(CROWD_EVERY_MS);
})();

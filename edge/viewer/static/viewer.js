"use strict";
// The viewer's own page: consent per signal, a visible indicator, stop, summary and forget.
// Everything is served by the agent on loopback; no external script, font or image.
(function () {
  // The page's own token: the agent refuses a POST without it.
  const TOKEN = document.querySelector('meta[name="onlooker-token"]').content;
  const STRINGS = {
    en: {
      indicator: "This screen is watching you",
      consent_title: "This screen has a camera.",
      consent_lead: "If you agree, it will try to read you the way patented e-readers, smart TVs and social networks describe. You choose what it may do.",
      recorded: "This screen is playing a recorded video of a person who agreed to be filmed; no live camera is watched.",
      choose: "What may the screen infer about you?",
      scope_expression: "Your expression",
      scope_expression_why: "joy, surprise, anger… from your face (Facebook patent US 9,681,166)",
      scope_attention: "Your attention",
      scope_attention_why: "whether you are there, how many you are, where your head is turned (smart-TV patent US 2012/0304206)",
      scope_reading: "Your reading",
      scope_reading_why: "how fast you read, what you skim or dwell on (Amazon e-reader patents)",
      what_leaves: "What leaves this device, who sees it, and for how long",
      stays: "The camera picture, your face and its measurements never leave this device.",
      leaves: "Only labels and a few rounded numbers are sent, under a random name for this visit, like this:",
      who: "They are shown on the dashboard screen next to this one.",
      kept: "They are deleted",
      forget_any_time: "You can delete them at once with “Forget me”.",
      agree: "I agree — watch me",
      sharing: "You share:",
      prev: "‹ Previous",
      next: "Next ›",
      teach: "Teach the screen (optional):",
      teach_face: "Your expressions",
      teach_gaze: "Where you look",
      teach_line: "How you read a line",
      read_line: "Read this line once, at your usual pace:",
      calibration_line: "The screen follows your eyes from the first word of this line to the very last one.",
      taught_line: "Thank you: the screen now knows where your eyes are on a line of text — for this visit only.",
      show: {joy: "Show a happy face", surprise: "Show surprise", sadness: "Show a sad face", anger: "Show an angry face"},
      look: "Look at the dot",
      taught_face: "Thank you: the screen now knows how you show your feelings — for this visit only.",
      taught_gaze: "Thank you: the screen now maps your gaze to parts of the screen — for this visit only.",
      not_taught: "The screen could not learn from that (no face seen?). You can try again.",
      summary_title: "What the screen learned about you",
      exact: "The exact messages that left this device (the last of each kind)",
      forgotten: "Deleted: the dashboard and this device have forgotten this visit.",
      forget: "Forget me",
      again: "Start again",
      stop: "Stop watching",
      waiting: "Waiting for a face in front of the camera.",
      watching_now: "Watching you now.",
      agent_down: "The screen's agent is not running.",
      at_visit_end: "when your visit ends",
      after_minutes: (m) => `${m} minutes after your visit`,
      summary: (s, n) => `In ${s} seconds the screen sent ${n} messages about you.`,
      kept_for: (s) => ` They will be deleted in ${Math.ceil(s / 60)} minutes.`,
      types: {visit: "visit start and end", attention: "attention readings", expression: "expression readings", feedback: "your answers"},
      scope_names: {expression: "expression", attention: "attention", reading: "reading"},
      seen_as: "Expressions it saw:",
      grades_title: "Was the screen right?",
      grades_lead: "Optional: tap one answer beside each conclusion. Only the conclusion and your answer are sent, under this visit’s random name, and they are deleted with the visit.",
      grade_words: {right: "Right", wrong: "Wrong", cant_say: "Can’t say"},
      feeling_question: "What were you actually feeling?",
      emotions: {neutral: "neutral", joy: "joy", surprise: "surprise", anger: "anger", sadness: "sadness", fear: "fear", disgust: "disgust", contempt: "contempt"},
      topics: {health: "health", money: "money", politics: "politics", love: "love", technology: "technology", travel: "travel", food: "food", nature: "nature"},
      answer_failed: "Your answer could not be sent.",
      conclusion: {
        expression: (p, w) => `Your expression was mostly ${w.emotions[p.label]} (${Math.round(p.share * 100)} % of the time).`,
        feeling: (p, w) => `Over time it saw: ${Object.entries(p.labels).sort((a, b) => b[1] - a[1]).map(([l, n]) => `${w.emotions[l]} ${n}×`).join(", ")}.`,
        attention: (p) => `You looked at the screen ${Math.round(p.looking_share * 100)} % of the time and looked away ${p.look_aways} times.`,
        pace: (p) => `You read ${p.wpm} words a minute — ${p.verdict === "faster" ? "faster than" : p.verdict === "slower" ? "slower than" : "as fast as"} the average adult (238).`,
        skims: (p) => `You skimmed ${p.skimmed} of ${p.pages} pages.` +
          (p.by_eye != null ? ` Looking back, your eyes skimmed ${p.by_eye} of ${p.by_eye_pages} pages compared with your own reading.` : ""),
        interests: (p, w) => `You are most interested in ${w.topics[p.topic]}.`,
        time_left: (p) => `You need ${Math.max(1, Math.round(p.seconds / 60))} more minutes to finish the book.`,
      },
    },
    da: {
      indicator: "Skærmen ser på dig",
      consent_title: "Denne skærm har et kamera.",
      consent_lead: "Hvis du siger ja, prøver den at aflæse dig, sådan som patenter på e-bogslæsere, smart-tv og sociale medier beskriver. Du vælger, hvad den må.",
      recorded: "Skærmen afspiller en optaget video af en person, der har sagt ja til at blive filmet; intet levende kamera bliver brugt.",
      choose: "Hvad må skærmen udlede om dig?",
      scope_expression: "Dit ansigtsudtryk",
      scope_expression_why: "glæde, overraskelse, vrede … ud fra dit ansigt (Facebook-patent US 9,681,166)",
      scope_attention: "Din opmærksomhed",
      scope_attention_why: "om du er der, hvor mange I er, hvor dit hoved vender (smart-tv-patent US 2012/0304206)",
      scope_reading: "Din læsning",
      scope_reading_why: "hvor hurtigt du læser, hvad du skimmer eller dvæler ved (Amazons e-bogspatenter)",
      what_leaves: "Hvad forlader enheden, hvem ser det, og hvor længe",
      stays: "Kamerabilledet, dit ansigt og målene af det forlader aldrig denne enhed.",
      leaves: "Kun betegnelser og nogle få afrundede tal sendes, under et tilfældigt navn for dette besøg, sådan her:",
      who: "De vises på dashboard-skærmen ved siden af denne.",
      kept: "De slettes",
      forget_any_time: "Du kan slette dem med det samme med “Glem mig”.",
      agree: "Ja — se på mig",
      sharing: "Du deler:",
      prev: "‹ Forrige",
      next: "Næste ›",
      teach: "Lær skærmen (valgfrit):",
      teach_face: "Dine ansigtsudtryk",
      teach_gaze: "Hvor du kigger",
      teach_line: "Hvordan du læser en linje",
      read_line: "Læs denne linje én gang, i dit sædvanlige tempo:",
      calibration_line: "Skærmen følger dine øjne fra det første ord på denne linje til det allersidste.",
      taught_line: "Tak: skærmen ved nu, hvor på en tekstlinje dine øjne er — kun i dette besøg.",
      show: {joy: "Vis et glad ansigt", surprise: "Vis overraskelse", sadness: "Vis et trist ansigt", anger: "Vis et vredt ansigt"},
      look: "Kig på prikken",
      taught_face: "Tak: skærmen ved nu, hvordan du viser dine følelser — kun i dette besøg.",
      taught_gaze: "Tak: skærmen kan nu se, hvilken del af skærmen du kigger på — kun i dette besøg.",
      not_taught: "Skærmen kunne ikke lære noget af det (intet ansigt?). Du kan prøve igen.",
      summary_title: "Hvad skærmen lærte om dig",
      exact: "De præcise beskeder, der forlod enheden (den sidste af hver slags)",
      forgotten: "Slettet: dashboardet og denne enhed har glemt besøget.",
      forget: "Glem mig",
      again: "Begynd forfra",
      stop: "Stop med at se på mig",
      waiting: "Venter på et ansigt foran kameraet.",
      watching_now: "Ser på dig nu.",
      agent_down: "Skærmens agent kører ikke.",
      at_visit_end: "når dit besøg slutter",
      after_minutes: (m) => `${m} minutter efter dit besøg`,
      summary: (s, n) => `På ${s} sekunder sendte skærmen ${n} beskeder om dig.`,
      kept_for: (s) => ` De slettes om ${Math.ceil(s / 60)} minutter.`,
      types: {visit: "besøgets start og slut", attention: "målinger af opmærksomhed", expression: "målinger af ansigtsudtryk", feedback: "dine svar"},
      scope_names: {expression: "ansigtsudtryk", attention: "opmærksomhed", reading: "læsning"},
      seen_as: "Udtryk den så:",
      grades_title: "Havde skærmen ret?",
      grades_lead: "Valgfrit: tryk på ét svar ud for hver konklusion. Kun konklusionen og dit svar sendes, under besøgets tilfældige navn, og de slettes sammen med besøget.",
      grade_words: {right: "Rigtigt", wrong: "Forkert", cant_say: "Ved ikke"},
      feeling_question: "Hvad følte du egentlig?",
      emotions: {neutral: "neutral", joy: "glæde", surprise: "overraskelse", anger: "vrede", sadness: "tristhed", fear: "frygt", disgust: "afsky", contempt: "foragt"},
      topics: {health: "sundhed", money: "penge", politics: "politik", love: "kærlighed", technology: "teknologi", travel: "rejser", food: "mad", nature: "natur"},
      answer_failed: "Dit svar kunne ikke sendes.",
      conclusion: {
        expression: (p, w) => `Dit ansigtsudtryk var mest ${w.emotions[p.label]} (${Math.round(p.share * 100)} % af tiden).`,
        feeling: (p, w) => `Over tid så den: ${Object.entries(p.labels).sort((a, b) => b[1] - a[1]).map(([l, n]) => `${w.emotions[l]} ${n}×`).join(", ")}.`,
        attention: (p) => `Du kiggede på skærmen ${Math.round(p.looking_share * 100)} % af tiden og kiggede væk ${p.look_aways} gange.`,
        pace: (p) => `Du læser ${p.wpm} ord i minuttet — ${p.verdict === "faster" ? "hurtigere end" : p.verdict === "slower" ? "langsommere end" : "lige så hurtigt som"} en gennemsnitlig voksen (238).`,
        skims: (p) => `Du skimmede ${p.skimmed} af ${p.pages} sider.` +
          (p.by_eye != null ? ` Set bagefter skimmede dine øjne ${p.by_eye} af ${p.by_eye_pages} sider sammenlignet med din egen læsning.` : ""),
        interests: (p, w) => `Du interesserer dig mest for ${w.topics[p.topic]}.`,
        time_left: (p) => `Du mangler ${Math.max(1, Math.round(p.seconds / 60))} minutter for at læse bogen færdig.`,
      },
    },
  };
  let lang = localStorage.getItem("onlooker-lang") === "da" ? "da" : "en";
  let last = null;
  let dismissed = null;
  let wasWatching = false; // the visit whose summary the viewer closed with "Start again"

  const $ = (id) => document.getElementById(id);
  const boxes = Array.from(document.querySelectorAll('input[name="scope"]'));
  const t = (key) => STRINGS[lang][key];

  function translate() {
    document.documentElement.lang = lang;
    for (const node of document.querySelectorAll("[data-i18n]")) {
      node.textContent = t(node.dataset.i18n);
    }
    for (const button of document.querySelectorAll("[data-lang]")) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
    }
    window.OnlookerReader.language(lang);
    if (last) show(last);
  }

  function show(status) {
    last = status;
    const learned = status.learned;
    const watching = status.watching || status.consented;
    const summary = !watching && learned && !learned.active && learned.visit !== dismissed;
    $("consent").hidden = watching || summary;
    $("watching").hidden = !watching;
    $("summary").hidden = !summary;
    $("stop").hidden = !watching;
    document.body.classList.toggle("reading", Boolean(watching));
    if (watching && !wasWatching) window.scrollTo(0, 0);
    wasWatching = Boolean(watching);
    window.OnlookerReader.setActive(Boolean(watching));
    $("indicator").hidden = !status.watching;
    document.body.classList.toggle("watching", status.watching);
    $("recorded").hidden = status.consent_kind !== "recorded-source";
    $("retention").textContent = status.retention_s > 0
      ? t("after_minutes")(Math.round(status.retention_s / 60))
      : t("at_visit_end");
    $("state").textContent = status.watching ? t("watching_now") : t("waiting");
    $("sharing").textContent = status.scopes.map((s) => t("scope_names")[s]).join(", ");
    $("teach-face").hidden = !status.watching || !status.scopes.includes("expression");
    $("teach-gaze").hidden = !status.watching ||
      !(status.scopes.includes("attention") || status.scopes.includes("reading"));
    $("teach-line").hidden = !status.watching || !status.scopes.includes("reading");
    if (summary) showSummary(learned);
  }

  function showSummary(learned) {
    const total = Object.values(learned.messages).reduce((a, b) => a + b, 0);
    let text = t("summary")(Math.round(learned.duration_s), total);
    if (!learned.forgotten && learned.kept_for_s) text += t("kept_for")(learned.kept_for_s);
    $("summary-text").textContent = text;
    const list = $("summary-counts");
    list.replaceChildren();
    for (const [type, count] of Object.entries(learned.messages)) {
      const item = document.createElement("li");
      item.textContent = `${count} × ${t("types")[type] || type}`;
      list.appendChild(item);
    }
    const labels = Object.entries(learned.expressions).sort((a, b) => b[1] - a[1]);
    if (labels.length) {
      const item = document.createElement("li");
      item.textContent = t("seen_as") + " " + labels.map(([l, n]) => `${l} ${n}×`).join(", ");
      list.appendChild(item);
    }
    $("summary-last").textContent = Object.values(learned.last)
      .map((m) => JSON.stringify(m)).join("\n");
    $("forgotten").hidden = !learned.forgotten;
    $("forget").hidden = learned.forgotten;
    showGrades(learned);
  }

  // "Was the screen right?": one row per conclusion that left the device, three answers
  // each (for the timeline, the emotion words). Nothing is pre-selected; every tap is sent.
  const EMOTIONS = ["neutral", "joy", "surprise", "anger", "sadness", "fear", "disgust", "contempt"];
  let gradesKey = null;
  function showGrades(learned) {
    const conclusions = learned.forgotten ? [] : learned.conclusions || [];
    const key = JSON.stringify([lang, learned.visit, conclusions, learned.answers || {}]);
    $("grades").hidden = !conclusions.length;
    if (key === gradesKey) return; // rebuilt only when something changed, not on every poll
    gradesKey = key;
    const words = STRINGS[lang];
    const list = $("grades-list");
    list.replaceChildren();
    for (const conclusion of conclusions) {
      const row = document.createElement("li");
      row.className = "grade";
      row.dataset.testid = "grade-" + conclusion.kind;
      const text = document.createElement("span");
      text.className = "grade-text";
      text.textContent = t("conclusion")[conclusion.kind](conclusion.params, words);
      row.appendChild(text);
      const group = document.createElement("span");
      group.className = "grade-answers";
      group.setAttribute("role", "group");
      const feeling = conclusion.kind === "feeling";
      if (feeling) {
        const question = document.createElement("span");
        question.className = "grade-question";
        question.textContent = t("feeling_question");
        group.appendChild(question);
      }
      group.setAttribute("aria-label", feeling ? t("feeling_question") : text.textContent);
      const chosen = (learned.answers || {})[conclusion.kind];
      for (const answer of feeling ? EMOTIONS : ["right", "wrong", "cant_say"]) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "secondary small";
        button.dataset.answer = answer;
        button.textContent = feeling ? words.emotions[answer] : words.grade_words[answer];
        button.setAttribute("aria-pressed", String(chosen === answer));
        button.addEventListener("click", function () { answerConclusion(conclusion.kind, answer); });
        group.appendChild(button);
      }
      row.appendChild(group);
      list.appendChild(row);
    }
  }

  async function answerConclusion(kind, answer) {
    try {
      const response = await fetch("/api/feedback", {
        method: "POST",
        headers: {"Content-Type": "application/json", "X-Onlooker-Token": TOKEN},
        body: JSON.stringify({conclusion: kind, answer: answer}),
      });
      if (!response.ok) throw new Error(String(response.status));
      show(await response.json());
    } catch (error) {
      $("summary-text").textContent = t("answer_failed");
    }
  }

  async function call(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-Onlooker-Token": TOKEN},
      body: JSON.stringify(body),
    });
    show(await response.json());
  }

  async function poll() {
    try {
      const response = await fetch("/api/status", {cache: "no-store"});
      if (response.ok) show(await response.json());
    } catch (error) {
      $("state").textContent = t("agent_down");
    }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  async function calibrate(body) {
    const response = await fetch("/api/calibration", {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-Onlooker-Token": TOKEN},
      body: JSON.stringify(body),
    });
    return response.json();
  }

  async function teachFace() {
    const overlay = $("calibration");
    overlay.hidden = false;
    let learned = 0;
    try {
      for (const emotion of ["joy", "surprise", "sadness", "anger"]) {
        $("calibration-prompt").textContent = t("show")[emotion];
        const started = await calibrate({kind: "expression", emotion: emotion, phase: "start"});
        if (started.error) break;
        await sleep(3000);
        const done = await calibrate({kind: "expression", emotion: emotion, phase: "end"});
        if (done.calibrated) learned += 1;
      }
    } finally {
      overlay.hidden = true;
    }
    $("teach-result").textContent = learned ? t("taught_face") : t("not_taught");
  }

  async function teachGaze() {
    const overlay = $("calibration");
    const dot = $("calibration-dot");
    overlay.hidden = false;
    dot.hidden = false;
    $("calibration-prompt").textContent = t("look");
    let result = {calibrated: false};
    try {
      const started = await calibrate({kind: "gaze", phase: "start"});
      if (!started.error) {
        for (let region = 0; region < 9; region++) {
          const row = Math.floor(region / 3);
          const col = region % 3;
          dot.style.left = ((col + 0.5) / 3 * 100) + "%";
          dot.style.top = ((row + 0.5) / 3 * 100) + "%";
          await calibrate({kind: "gaze", phase: "point", region: null}); // the eyes travel
          await sleep(500);
          await calibrate({kind: "gaze", phase: "point", region: region});
          await sleep(1200);
        }
        result = await calibrate({kind: "gaze", phase: "end"});
      }
    } finally {
      overlay.hidden = true;
      dot.hidden = true;
    }
    $("teach-result").textContent = result.calibrated ? t("taught_gaze") : t("not_taught");
  }

  // "Read this line": the gaze at the two ends of a line of known place and width tells the
  // agent how wide a line of text is for these eyes, without guessing the screen's size.
  async function teachLine() {
    const overlay = $("calibration");
    const line = $("calibration-line");
    overlay.hidden = false;
    line.hidden = false;
    $("calibration-prompt").textContent = t("read_line");
    line.textContent = t("calibration_line");
    let result = {calibrated: false};
    try {
      await sleep(1500); // time to find the line's start
      const started = await calibrate({kind: "line", phase: "start"});
      if (!started.error) {
        const words = t("calibration_line").split(/\s+/).length;
        await sleep(Math.max(3000, words * 60000 / 240)); // one line at about 240 wpm
        const box = line.getBoundingClientRect();
        result = await calibrate({
          kind: "line", phase: "end",
          left: Math.max(0, box.left / window.innerWidth),
          right: Math.min(1, box.right / window.innerWidth),
        });
      }
    } finally {
      overlay.hidden = true;
      line.hidden = true;
    }
    $("teach-result").textContent = result.calibrated ? t("taught_line") : t("not_taught");
  }

  $("teach-face").addEventListener("click", teachFace);
  $("teach-line").addEventListener("click", teachLine);
  $("teach-gaze").addEventListener("click", teachGaze);

  for (const box of boxes) {
    box.addEventListener("change", function () {
      $("agree").disabled = !boxes.some((b) => b.checked);
    });
  }
  $("agree").addEventListener("click", function () {
    call("/api/consent", {consent: true, scopes: boxes.filter((b) => b.checked).map((b) => b.value)});
  });
  $("stop").addEventListener("click", function () { call("/api/consent", {consent: false}); });
  $("forget").addEventListener("click", function () { call("/api/forget", {}); });
  $("again").addEventListener("click", function () {
    dismissed = last && last.learned ? last.learned.visit : null;
    for (const box of boxes) box.checked = false;
    $("agree").disabled = true;
    if (last) show(last);
  });
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", function () {
      lang = button.dataset.lang;
      localStorage.setItem("onlooker-lang", lang);
      translate();
    });
  }
  window.OnlookerReader.load(lang);
  translate();
  poll();
  setInterval(poll, 500);
})();

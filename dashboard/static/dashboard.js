// Onlooker dashboard: follows /api/stream and keeps the agent table and visit cards current.
// Every value from the wire is untrusted text, so it only ever reaches the page as textContent.
"use strict";

(function () {
  const MAX_VISITS_SHOWN = 24;
  const agentsBody = document.getElementById("agents-body");
  const agentsEmpty = document.getElementById("agents-empty");
  const visitsList = document.getElementById("visits-list");
  const visitsEmpty = document.getElementById("visits-empty");
  const visitTemplate = document.getElementById("visit-template");
  const streamStatus = document.getElementById("stream-status");

  const agentRows = new Map(); // agent id -> <tr>
  const visitCards = new Map(); // visit id -> <li>

  const missing = "—";

  function number(value, digits) {
    return value === null || value === undefined ? missing : Number(value).toFixed(digits);
  }

  function degrees(value) {
    return value === null || value === undefined ? missing : Number(value).toFixed(1) + "°";
  }

  function clock(ts) {
    return ts === null || ts === undefined ? missing : new Date(ts * 1000).toLocaleTimeString();
  }

  function setField(root, name, text) {
    const node = root.querySelector('[data-field="' + name + '"]');
    if (node) {
      node.textContent = text;
    }
    return node;
  }

  function setStatus(state, text) {
    streamStatus.dataset.state = state;
    streamStatus.textContent = text;
  }

  function refreshEmpty() {
    agentsEmpty.hidden = agentRows.size > 0;
    visitsEmpty.hidden = visitCards.size > 0;
  }

  // --- agents -------------------------------------------------------------------------------

  function agentRow(id) {
    let row = agentRows.get(id);
    if (row) {
      return row;
    }
    row = document.createElement("tr");
    row.dataset.testid = "agent-" + id;
    row.dataset.agent = id;
    for (const name of ["agent", "status", "fps", "model", "source"]) {
      const cell = document.createElement(name === "agent" ? "th" : "td");
      if (name === "agent") {
        cell.scope = "row";
      }
      cell.dataset.field = name;
      row.appendChild(cell);
    }
    agentRows.set(id, row);
    const ids = Array.from(agentRows.keys()).sort();
    for (const other of ids) {
      agentsBody.appendChild(agentRows.get(other)); // re-appending keeps rows sorted by id
    }
    return row;
  }

  function showAgent(agent) {
    const row = agentRow(agent.agent);
    setField(row, "agent", agent.agent);
    const status = setField(row, "status", agent.online ? "online" : "offline");
    status.className = agent.online ? "status online" : "status offline";
    row.classList.toggle("is-offline", !agent.online);
    setField(row, "fps", number(agent.fps, 1));
    let model = agent.model === null || agent.model === undefined ? missing : agent.model;
    if (agent.model_version) {
      model += " " + agent.model_version;
    }
    setField(row, "model", model);
    setField(row, "source", agent.source || missing);
  }

  // --- visits -------------------------------------------------------------------------------

  function visitCard(id) {
    let card = visitCards.get(id);
    if (card) {
      return card;
    }
    card = visitTemplate.content.firstElementChild.cloneNode(true);
    card.dataset.testid = "visit-" + id;
    card.dataset.visit = id;
    visitCards.set(id, card);
    visitsList.prepend(card); // newest first
    while (visitCards.size > MAX_VISITS_SHOWN) {
      const oldest = visitsList.lastElementChild;
      visitCards.delete(oldest.dataset.visit);
      oldest.remove();
    }
    return card;
  }

  function showVisit(visit) {
    const card = visitCard(visit.visit);
    card.classList.toggle("is-ended", !visit.active);
    setField(card, "visit", visit.visit);
    setField(card, "agent", visit.agent);
    const scopes = visit.scopes && visit.scopes.length ? " (" + visit.scopes.join(", ") + ")" : "";
    setField(card, "consent", (visit.consent || "unknown") + scopes);
    setField(card, "started", clock(visit.started));
    // Not active and never ended: the screen vanished mid-visit (crash, unplugged, timeout).
    const phase = visit.active ? "active" : visit.ended === null ? "interrupted" : "ended";
    const badge = setField(card, "active", phase);
    badge.className = "badge " + phase;
    // Each signal arrives only if the viewer consented to its scope; absent means "not shared".
    const attention = visit.attention || {};
    const seen = visit.attention !== null && visit.attention !== undefined;
    setField(card, "present", seen ? (attention.present ? "yes" : "no") : missing);
    setField(card, "faces", seen ? String(attention.faces) : missing);
    setField(card, "yaw", degrees(attention.yaw));
    setField(card, "pitch", degrees(attention.pitch));
    setField(card, "roll", degrees(attention.roll));
    const expression = visit.expression || {};
    setField(card, "expression", expression.label || missing);
    setField(card, "expression_score", number(expression.score, 2));
  }

  function forgetVisit(purge) {
    // "Forget me", withdrawal or the end of the retention period: nothing of it may stay.
    const card = visitCards.get(purge.visit);
    if (card) {
      card.remove();
      visitCards.delete(purge.visit);
    }
  }

  // --- stream -------------------------------------------------------------------------------

  function showSnapshot(snapshot) {
    agentRows.clear();
    visitCards.clear();
    agentsBody.replaceChildren();
    visitsList.replaceChildren();
    snapshot.agents.forEach(showAgent);
    // The snapshot lists newest first; prepending oldest first keeps that order.
    snapshot.visits.slice(0, MAX_VISITS_SHOWN).reverse().forEach(showVisit);
    refreshEmpty();
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
      refreshEmpty();
    });
  }

  function connect() {
    const source = new EventSource("/api/stream");
    source.addEventListener("open", function () {
      setStatus("live", "live");
    });
    source.addEventListener("error", function () {
      setStatus("reconnecting", "reconnecting…"); // EventSource retries on its own
    });
    on(source, "snapshot", showSnapshot);
    on(source, "agent", showAgent);
    on(source, "visit", showVisit);
    on(source, "purge", forgetVisit);
  }

  refreshEmpty();
  connect();
})();

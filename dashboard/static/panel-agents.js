// The "Screens" table: each agent online or offline, frames/s, viewers, clock, lost messages.

import { fmt, missing, setField } from "./format.js";
import { t } from "./i18n.js";
import { $ } from "./page-state.js";

const agentRows = new Map();

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
  const body = $("agents-body");
  Array.from(agentRows.keys()).sort().forEach(function (other) {
    body.appendChild(agentRows.get(other)); // re-appending keeps rows sorted by id
  });
  return row;
}

export function showAgent(agent) {
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

export function renderAgents() {
  $("agents-empty").hidden = agentRows.size > 0;
}

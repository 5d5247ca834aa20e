// The patent that claims each inference, named on every panel with its raw message one click
// away. The names come from the server (dashboard/profile.py's SOURCES).

import { contract } from "./contract.js";
import { t } from "./i18n.js";

export function patent(key) {
  return contract.sources[key] || key;
}

/** Fill a `.source` line: "From <patent> · raw message". */
export function fillSource(node) {
  const from = document.createElement("span");
  from.textContent = t("source.from") + " " + patent(node.dataset.source) + " · ";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "raw-button";
  button.dataset.raw = node.dataset.raw;
  button.dataset.testid = "raw-" + node.dataset.raw;
  button.textContent = t("source.raw");
  node.replaceChildren(from, button);
}

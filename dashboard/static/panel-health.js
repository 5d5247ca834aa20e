// Whether this dashboard keeps up: a warning beside the stream's status when messages wait too
// long before they are shown (the server's `behind`), or when messages from the screens never
// arrived (`dropped`, counted from the gaps in each screen's sequence numbers). Hidden when fine.

import { grouped } from "./format.js";
import { t } from "./i18n.js";
import { $, state } from "./page-state.js";

export function showHealth(health) {
  if (health) {
    state.health = health;
  }
  const line = $("dashboard-health");
  const now = state.health;
  const parts = [];
  if (now && now.behind) {
    parts.push(t("health.behind", { lag: (now.lag_ms / 1000).toFixed(1), backlog: grouped(now.backlog) }));
  }
  if (now && now.dropped > 0) {
    parts.push(t("health.dropped", { dropped: grouped(now.dropped) }));
  }
  line.textContent = parts.join(" ");
  line.hidden = parts.length === 0;
}

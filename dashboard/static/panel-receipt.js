// The printable data receipt (/receipt/<visit>): what was shared and concluded, and when the
// visit will be deleted (the retention period as the server has it); empty once purged.

import { conclusionItem } from "./conclusions.js";
import { contract } from "./contract.js";
import { clock, duration, field, grouped, setField } from "./format.js";
import { t } from "./i18n.js";
import { $, body, elapsed, state } from "./page-state.js";

export function renderReceipt() {
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
  const last = visit.ended !== null ? visit.ended : visit.last_ts;
  setField(root, "r-deleted", last ? t("receipt.deleted", { t: clock(last + contract.retention_s) }) : "");
}

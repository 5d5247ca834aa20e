// Panel "What an advertiser or an e-book vendor would conclude": the visit's conclusions and,
// once k visits are behind them, the crowd's.

import { conclusionItem } from "./conclusions.js";
import { field, li } from "./format.js";
import { t } from "./i18n.js";
import { crowdFor } from "./page-state.js";

export function renderSummary(panel, visit) {
  const list = field(panel, "conclusions");
  const crowd = crowdFor(visit);
  const items = ((visit.profile || {}).conclusions || []).concat(crowd ? crowd.conclusions || [] : []);
  if (!items.length) {
    list.replaceChildren(li(t("waiting"), "fine"));
  } else {
    list.replaceChildren.apply(list, items.map(conclusionItem));
  }
}

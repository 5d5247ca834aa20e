// Panel "Interests": the share of attention time per topic.

import { field, li, pct } from "./format.js";
import { t } from "./i18n.js";

export function renderInterests(panel, visit) {
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

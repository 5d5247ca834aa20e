// Panel "Attention": present, looking, look-aways, blinks, distance, faces.

import { missing, pct, setField } from "./format.js";
import { t } from "./i18n.js";

export function renderAttention(panel, visit) {
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

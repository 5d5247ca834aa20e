// The raw-message dialog: the exact payload behind a panel, byte for byte, as it left the
// device (GET /api/visits/<id>/raw). In a teacher's step-through, the stepped page's own.

import { contract } from "./contract.js";
import { getJSON } from "./http.js";
import { t } from "./i18n.js";
import { $, body, state, stepCut } from "./page-state.js";

function showRaw(key) {
  const id = state.shownId || body.dataset.visit;
  const dialog = $("raw-dialog");
  const payload = $("raw-payload");
  const meta = $("raw-meta");
  const visit = state.visits.get(id);
  const cut = visit ? stepCut(visit) : null;
  // Messages about one page or post are kept per item too, as "<type>:<item>".
  const itemKey = cut !== null && contract.item_kinds.indexOf(key) >= 0 ? key + ":" + visit.pages[cut].item : null;
  getJSON("/api/visits/" + encodeURIComponent(id) + "/raw")
    .then(function (data) {
      const raw = (data && data.raw) || {};
      const text = (itemKey && raw[itemKey]) || raw[key];
      payload.textContent = text || t("raw.missing");
      meta.textContent = text ? t("raw.bytes", { n: new TextEncoder().encode(text).length }) : "";
      if (!dialog.open) {
        dialog.showModal();
      }
    })
    .catch(function (error) { console.warn("raw message unavailable", error); });
}

export function setupRaw() {
  document.addEventListener("click", function (event) {
    const button = event.target.closest ? event.target.closest(".raw-button") : null;
    if (button) {
      showRaw(button.dataset.raw);
    }
  });
}

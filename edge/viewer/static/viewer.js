"use strict";
(function () {
  const agree = document.getElementById("agree");
  const stop = document.getElementById("stop");
  const state = document.getElementById("state");
  const recorded = document.getElementById("recorded");

  function show(status) {
    recorded.hidden = status.consent_kind !== "recorded-source";
    agree.hidden = status.consented;
    stop.hidden = !status.consented;
    document.body.classList.toggle("watching", status.watching);
    if (status.watching) {
      state.textContent = "Watching you now. Press “Stop watching” at any time.";
    } else if (status.consented) {
      state.textContent = status.face_present ? "Starting…" : "Waiting for a face in front of the camera.";
    } else {
      state.textContent = "Not watching. Nothing about you is sent.";
    }
  }

  async function post(consent) {
    const response = await fetch("/api/consent", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({consent: consent}),
    });
    show(await response.json());
  }

  async function poll() {
    try {
      const response = await fetch("/api/status", {cache: "no-store"});
      if (response.ok) show(await response.json());
    } catch (error) {
      state.textContent = "The agent is not running.";
    }
  }

  agree.addEventListener("click", function () { post(true); });
  stop.addEventListener("click", function () { post(false); });
  poll();
  setInterval(poll, 500);
})();

// Requests to the dashboard's own API: JSON reads, and the teacher's admin POSTs (JSON, from
// this origin, with the admin token the teacher page was opened with, if any).

const TOKEN_KEY = "onlooker-token";

/** GET `path` as JSON; null for an error status (a network failure rejects). */
export function getJSON(path) {
  return fetch(path, { headers: { Accept: "application/json" } })
    .then(function (response) { return response.ok ? response.json() : null; });
}

function adminHeaders() {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  let token = null;
  try {
    token = window.sessionStorage.getItem(TOKEN_KEY);
  } catch (error) {
    token = null;
  }
  if (token) {
    headers.Authorization = "Bearer " + token;
  }
  return headers;
}

/** POST an admin action; resolves to {ok, status, data}. */
export function postAdmin(path) {
  return fetch(path, { method: "POST", headers: adminHeaders(), body: "{}" })
    .then(function (response) {
      return response.json().then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    });
}

/** Keep the admin token from `#token=…` for this tab, and take it out of the address bar. */
export function keepAdminToken() {
  const match = /token=([A-Za-z0-9_\-.~]+)/.exec(window.location.hash);
  if (!match) {
    return;
  }
  try {
    window.sessionStorage.setItem(TOKEN_KEY, match[1]);
  } catch (error) {
    console.warn("cannot keep the admin token", error);
  }
  history.replaceState(null, "", window.location.pathname + window.location.search);
}

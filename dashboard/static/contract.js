// The facts the page shares with the server (the wire's vocabularies, the adult reading pace,
// the patents, the score's start and ratings, k, the retention period, the exhibition hold),
// served by GET /api/contract from the Python constants that define them. No other module
// writes one of them down: they import it from here.

async function load() {
  const response = await fetch("/api/contract", { headers: { Accept: "application/json" } });
  if (!response.ok) {
    throw new Error("the dashboard's contract is unavailable (HTTP " + response.status + ")");
  }
  return response.json();
}

function frozen(value) {
  if (value && typeof value === "object") {
    Object.values(value).forEach(frozen);
    Object.freeze(value);
  }
  return value;
}

export const contract = frozen(await load());

// The page: search by a dropped photo, walk from result to result, duplicates, a map.
// The state lives in the URL (#/similar/12?mode=rgb), so the back button works and a view can
// be bookmarked; an upload's results live in history.state. This file routes and starts;
// common.js, search.js, duplicates.js and map.js (loaded before it) hold the views.
"use strict";

function route() {
  if (!api.health) return;
  const { parts, params } = parseHash();
  const view = parts[0] === "duplicates" || parts[0] === "map" ? parts[0] : "search";
  for (const name of ["search", "duplicates", "map"]) $(`${name}-view`).hidden = name !== view;
  document.querySelectorAll(".tabs a").forEach((a) => a.classList.toggle("active", a.dataset.view === view));
  showError("");
  if (view === "duplicates") return showDuplicates();
  if (view === "map") return showMap(params);
  applyParams(params);
  if (parts[0] === "similar" && /^\d+$/.test(parts[1] || "")) return showSimilar(parts[1]);
  if (parts[0] === "upload" && history.state && history.state.results) return showUpload(history.state);
  $("query").hidden = true;
  showSample();
}

// --- start ---------------------------------------------------------------------------------

async function start() {
  setUpSearch();
  setUpMap();
  window.addEventListener("popstate", route);
  try {
    api.health = await getJSON("/api/health");
  } catch (error) {
    showError(`The server does not answer: ${error.message}`);
    return;
  }
  const h = api.health;
  $("collection").textContent = `${h.images.toLocaleString()} images` + (h.pending ? ` (${h.pending.toLocaleString()} waiting for main.py)` : "") + (h.model ? ` · ${h.model}` : "");
  $("mode").replaceChildren(...h.modes.map((m) => el("option", { value: m, text: m })));
  $("mode").value = h.default_mode;
  fillMetrics(null);
  route();
}

start();

// The page: search by a dropped photo, walk from result to result, duplicates, a map.
// The state lives in the URL (#/similar/12?mode=rgb), so the back button works and a view can
// be bookmarked; an upload's results live in history.state. This file routes and starts;
// common.js, search.js, duplicates.js and map.js (loaded before it) hold the views.
"use strict";

// The search part of the URL: the hash without the viewer's "view=ID", which opens and closes
// the viewer over the results on show without searching again.
let routed = null;

function route() {
  if (!api.health) return;
  const { parts, params } = parseHash();
  const view = parts[0] === "duplicates" || parts[0] === "map" ? parts[0] : "search";
  const key = location.hash.replace(/([?&])view=\d+&?/, "$1").replace(/[?&]$/, "") +
    `|${(history.state && history.state.token) || ""}`; // two uploads may share a hash, never a token
  const same = key === routed && view !== "map"; // only the viewer changed: keep the results or groups shown
  routed = key;
  if (same) return syncViewer(params);
  syncViewer(new URLSearchParams());
  for (const name of ["search", "duplicates", "map"]) $(`${name}-view`).hidden = name !== view;
  document.querySelectorAll(".tabs a").forEach((a) => a.classList.toggle("active", a.dataset.view === view));
  showError("");
  if (view === "duplicates") return showDuplicates();
  if (view === "map") return showMap(params);
  applyParams(params);
  let searched;
  if (parts[0] === "similar" && /^\d+$/.test(parts[1] || "")) searched = showSimilar(parts[1]);
  else if (parts[0] === "upload" && history.state && history.state.results) showUpload(history.state);
  else {
    $("query").hidden = true;
    searched = showSample();
  }
  if (params.get("view")) Promise.resolve(searched).then(() => syncViewer(parseHash().params));
}

// --- start ---------------------------------------------------------------------------------

function setUpAbout() {
  $("about-button").addEventListener("click", () => {
    const open = $("about").hidden;
    $("about").hidden = !open;
    $("about-button").setAttribute("aria-expanded", String(open));
  });
}

async function start() {
  setUpSearch();
  setUpMap();
  setUpViewer();
  setUpAbout();
  window.addEventListener("popstate", route);
  try {
    api.health = await getJSON("/api/health");
  } catch (error) {
    showError(`The server does not answer: ${error.message}`);
    return;
  }
  const h = api.health;
  $("collection").textContent = `${h.images.toLocaleString()} images` + (h.pending ? ` (${h.pending.toLocaleString()} waiting for main.py)` : "") +
    (h.errors ? `, ${h.errors.toLocaleString()} files that could not be read` : "") + ".";
  $("model").textContent = h.model ? `Content is compared with the network ${h.model}${h.precision ? ` (${h.precision})` : ""}.` : "";
  $("mode").replaceChildren(...MODE_GROUPS.filter((g) => g.modes.some((m) => h.modes.includes(m)))
    .map((g) => el("option", { value: g.value, text: g.text })));
  $("hash").replaceChildren(...MODE_GROUPS[2].modes.filter((m) => h.modes.includes(m))
    .map((m) => el("option", { value: m, text: HASH_NAMES[m] || m })));
  applyParams(new URLSearchParams({ mode: h.default_mode }));
  route();
  getJSON("/api/filters").then((choices) => {
    $("folder-list").replaceChildren(...choices.folders.map((f) => el("option", { value: f.name, text: `${f.images} images` })));
    $("camera-list").replaceChildren(...choices.cameras.map((c) => el("option", { value: c.name, text: `${c.images} images` })));
  }).catch(() => { /* the lists only help typing; the filters work without them */ });
}

start();

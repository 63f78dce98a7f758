// Shared by the page's scripts: DOM and fetch helpers, the URL as the state, formatting.
// Plain JS, no build step: the scripts are loaded in order with <script defer> and share the
// page's global scope (common.js, search.js, duplicates.js, map.js, then app.js, which starts).
// Text from the server is always set as textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const api = { health: null };
let lastUpload = null; // the File objects of the last upload, to re-run it in another mode
let shown = 0; // counts views asked for: an answer that arrives after a newer click is dropped

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  return body;
}

function showError(message) {
  $("error").hidden = !message;
  $("error").textContent = message || "";
}

// --- the URL is the state ------------------------------------------------------------------

function parseHash() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  return { parts: (path || "/").split("/").filter(Boolean), params: new URLSearchParams(query || "") };
}

// Modes are shown by what they compare; the three hashes are one choice, refined under "Advanced".
const MODE_GROUPS = [
  { value: "embeddings", text: "Content", modes: ["embeddings"] },
  { value: "rgb", text: "Colours", modes: ["rgb"] },
  { value: "hash", text: "Layout / exact copies", modes: ["phash", "dhash", "ahash"] },
];
const METRIC_NAMES = {
  cosine: "cosine", ann_cosine: "cosine, fast (approximate)", euclidean: "straight-line",
  manhattan: "city-block", bhattacharyya: "histogram overlap", hamming: "bits that differ",
};
const HASH_NAMES = { phash: "perceptual (phash)", dhash: "gradients (dhash)", ahash: "average (ahash)" };

function groupOf(mode) {
  return MODE_GROUPS.find((g) => g.modes.includes(mode)) || MODE_GROUPS[0];
}

function modeName(mode) {
  const group = groupOf(mode);
  return group.modes.length > 1 ? `${group.text}: ${HASH_NAMES[mode] || mode}` : group.text;
}

function currentMode() {
  return $("mode").value === "hash" ? $("hash").value : $("mode").value;
}

function searchParams() {
  return new URLSearchParams({ mode: currentMode(), metric: $("metric").value, k: $("top-k").value });
}

function applyParams(params) {
  const mode = params.get("mode");
  if (mode && api.health.modes.includes(mode)) {
    $("mode").value = groupOf(mode).value;
    if ($("mode").value === "hash") $("hash").value = mode;
  }
  fillMetrics(params.get("metric"));
  const k = params.get("k");
  if (k && Array.from($("top-k").options).some((o) => o.value === k)) $("top-k").value = k;
}

// --- formatting ---------------------------------------------------------------------------

function formatScore(score, metric) {
  return metric === "hamming" ? `${Math.round(score)} bits` : score.toFixed(3);
}

// Long jobs (duplicates at 500k images, a first UMAP) answer 202 until done: ask again while the view is open.
function askAgain(view, again, status, message) {
  status.textContent = `${message[0].toUpperCase()}${message.slice(1).replace(/; ask again.*/, "")}…`;
  setTimeout(() => { if (!$(`${view}-view`).hidden) again(); }, 2000);
}

function formatBytes(n) {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`;
}

function scoreBadge(hit, answer) {
  return el("span", { class: "score", text: formatScore(hit.score, answer.metric), title: `distance ${hit.score}` });
}

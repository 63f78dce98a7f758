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

// Filters and sort travel with the search (walking to a result keeps them); empty ones stay out of the URL.
const FILTERS = ["folder", "after", "before", "camera", "sort"];

function searchParams() {
  const params = new URLSearchParams({ mode: currentMode(), metric: $("metric").value, k: $("top-k").value });
  for (const name of FILTERS) {
    const value = $(name).value.trim();
    if (value && !(name === "sort" && value === "similarity")) params.set(name, value);
  }
  return params;
}

// The filter part of an API URL: "&folder=…&after=…".
function filterQuery(params) {
  return FILTERS.filter((name) => params.get(name)).map((name) => `&${name}=${encodeURIComponent(params.get(name))}`).join("");
}

// Pictures marked + (more like this) and − (less like this) for the query on show: in the URL
// (like=3,4&unlike=9), so Back undoes a mark and a marked search can be bookmarked.
function marksOf(params) {
  const ids = (name) => (params.get(name) || "").split(",").filter((x) => /^\d+$/.test(x)).map(Number);
  return { like: ids("like"), unlike: ids("unlike") };
}

function marksQuery(marks) {
  const parts = [];
  if (marks.like.length) parts.push(`like=${marks.like.join(",")}`);
  if (marks.unlike.length) parts.push(`unlike=${marks.unlike.join(",")}`);
  return parts.length ? `&${parts.join("&")}` : "";
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
  for (const name of FILTERS) $(name).value = params.get(name) || (name === "sort" ? "similarity" : "");
  const active = FILTERS.filter((name) => params.get(name) && params.get(name) !== "similarity").length;
  $("filter-count").textContent = active ? `(${active})` : "";
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

// A result's score in words (the labels' cut points are measured per mode and metric: search/labels.py),
// the number on hover.
function scoreBadge(hit, answer) {
  const rank = (answer.labels || []).indexOf(hit.label);
  const text = hit.same_as_query ? "in your collection" : hit.label || formatScore(hit.score, answer.metric);
  return el("span", { class: `score label-${hit.same_as_query ? 0 : rank}`, text,
                      title: `distance ${formatScore(hit.score, answer.metric)} (${METRIC_NAMES[answer.metric] || answer.metric}; smaller is closer)` });
}

// The index after which no result is at least "similar" (-1: none is).
function lastSimilar(list, answer) {
  const similar = (answer.labels || []).indexOf("similar");
  let last = -1;
  list.forEach((hit, i) => { if (hit.same_as_query || answer.labels.indexOf(hit.label) <= similar) last = i; });
  return last;
}

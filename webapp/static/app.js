// The page: search by a dropped photo, walk from result to result, duplicates, a map.
// Plain JS, no build step. The state lives in the URL (#/similar/12?mode=rgb), so the back
// button works and a view can be bookmarked; an upload's results live in history.state.
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

function searchParams() {
  return new URLSearchParams({ mode: $("mode").value, metric: $("metric").value, k: $("top-k").value });
}

function applyParams(params) {
  if (params.get("mode") && api.health.modes.includes(params.get("mode"))) $("mode").value = params.get("mode");
  fillMetrics(params.get("metric"));
  const k = params.get("k");
  if (k && Array.from($("top-k").options).some((o) => o.value === k)) $("top-k").value = k;
}

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

async function showSample() {
  const mine = ++shown;
  $("results").replaceChildren();
  $("status").textContent = "Drop a photo to find the pictures most like it, then click any result to walk on.";
  try {
    const answer = await getJSON("/api/sample?count=14");
    if (mine !== shown || !answer.images.length) return; // moved on meanwhile, or nothing to show
    const params = searchParams();
    $("results").replaceChildren(...answer.images.map((image) => el("li", {},
      el("a", { class: "card", href: `#/similar/${image.id}?${params}`, title: `${image.path}\nmore like this` },
        el("img", { src: image.thumbnail, alt: image.path, loading: "lazy", width: "256", height: "256" }),
        el("span", { class: "meta" }, el("span", { class: "path", text: image.path }))))));
    $("status").textContent = "Drop a photo to find the pictures most like it, or start from one of these (a random pick):";
  } catch (error) {
    showError(error.message);
  }
}

// --- searching -----------------------------------------------------------------------------

function fillMetrics(wanted) {
  const mode = $("mode").value;
  const metrics = api.health.metrics[mode] || [];
  const keep = wanted && metrics.includes(wanted) ? wanted : api.health.default_metrics[mode];
  $("metric").replaceChildren(...metrics.map((m) => el("option", { value: m, text: m })));
  $("metric").value = keep;
}

function formatScore(score, metric) {
  return metric === "hamming" ? `${Math.round(score)} bits` : score.toFixed(3);
}

function renderResults(list, answer, target = $("results")) {
  const params = searchParams();
  list = list || [];
  target.replaceChildren(...list.map((hit, i) => {
    const link = el("a", { class: "card", href: `#/similar/${hit.id}?${params}`, title: `${hit.path}\nmore like this` },
      el("img", { src: hit.thumbnail, alt: hit.path, loading: "lazy", width: "256", height: "256" }),
      el("span", { class: "rank", text: `${i + 1}` }),
      el("span", { class: "meta" },
        el("span", { class: "score", text: formatScore(hit.score, answer.metric) }),
        el("span", { class: "path", text: hit.path })));
    const full = el("a", { class: "full", href: hit.image, target: "_blank", rel: "noopener", title: "open the full image", text: "⤢" });
    full.addEventListener("click", (event) => event.stopPropagation());
    link.append(full);
    return el("li", {}, link);
  }));
  const faster = answer.took_ms > 150 && answer.metric === "cosine" && (api.health.metrics[answer.mode] || []).includes("ann_cosine");
  $("status").textContent = list.length
    ? `${list.length} results in ${answer.took_ms} ms · ${answer.mode} / ${answer.metric} · smaller is more similar` +
      (faster ? " · tip: the metric ann_cosine answers large collections in milliseconds" : "")
    : "No results: the collection has no other extracted image.";
}

function showQuery(imageUrl, title, path) {
  const img = el("img", { src: imageUrl, alt: "" });
  img.addEventListener("error", () => img.remove());
  $("query").replaceChildren(img, el("div", { class: "what" }, el("b", { text: title }), el("span", { class: "path muted", text: path })));
  $("query").hidden = false;
}

async function showSimilar(id) {
  const params = searchParams();
  const mine = ++shown;
  $("status").textContent = "Searching…";
  $("results").setAttribute("aria-busy", "true");
  try {
    const [info, answer] = await Promise.all([
      getJSON(`/api/images/${id}`),
      getJSON(`/api/similar/${id}?mode=${params.get("mode")}&metric=${params.get("metric")}&top_k=${params.get("k")}`),
    ]);
    if (mine !== shown) return;
    showQuery(info.thumbnail, "More like this one", info.path);
    renderResults(answer.results, answer);
  } catch (error) {
    if (mine !== shown) return;
    $("status").textContent = "";
    $("results").replaceChildren();
    showError(error.message);
  } finally {
    $("results").removeAttribute("aria-busy");
  }
}

function showUpload(state) {
  shown++;
  showQuery(state.preview, state.names.length > 1 ? `${state.names.length} photos combined` : "Your photo", state.names.join(", "));
  renderResults(state.results, state.answer);
}

async function searchFiles(files) {
  files = Array.from(files || []).filter((f) => f.size > 0 || f.name);
  if (!files.length) return;
  lastUpload = files;
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name || "pasted image");
  form.append("mode", $("mode").value);
  form.append("metric", $("metric").value);
  form.append("top_k", $("top-k").value);
  $("status").textContent = `Searching with ${files.length > 1 ? files.length + " photos" : files[0].name || "your photo"}…`;
  showError("");
  try {
    const answer = await getJSON("/api/search", { method: "POST", body: form });
    const state = { results: answer.results, answer, names: files.map((f) => f.name || "pasted image"),
                    preview: URL.createObjectURL(files[0]) };
    history.pushState(state, "", `#/upload?${searchParams()}`);
    route();
  } catch (error) {
    $("status").textContent = "";
    showError(error.message);
  }
}

function rerun() {
  const { parts } = parseHash();
  if (parts[0] === "similar") history.pushState(null, "", `#/similar/${parts[1]}?${searchParams()}`), route();
  else if (parts[0] === "upload" && lastUpload) searchFiles(lastUpload);
}

// --- duplicates ----------------------------------------------------------------------------

// Long jobs (duplicates at 500k images, a first UMAP) answer 202 until done: ask again while the view is open.
function askAgain(view, again, status, message) {
  status.textContent = `${message[0].toUpperCase()}${message.slice(1).replace(/; ask again.*/, "")}…`;
  setTimeout(() => { if (!$(`${view}-view`).hidden) again(); }, 2000);
}

function formatBytes(n) {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`;
}

function duplicateCard(image, params, metric) {
  const link = el("a", { class: image.keep ? "card keep" : "card", href: `#/similar/${image.id}?${params}`, title: image.path },
    el("img", { src: image.thumbnail, alt: image.path, loading: "lazy", width: "256", height: "256" }),
    el("span", { class: "rank", text: image.keep ? "keep" : formatScore(image.distance, metric) }),
    el("span", { class: "meta" }, el("span", { class: "path", text: image.path })));
  return el("li", {}, link);
}

async function showDuplicates() {
  $("dup-status").textContent = "Finding groups of copies…";
  $("dup-groups").replaceChildren();
  try {
    const answer = await getJSON("/api/duplicates");
    if (answer.pending) return askAgain("duplicates", showDuplicates, $("dup-status"), answer.message);
    const groups = answer.groups || [];
    $("dup-status").textContent = groups.length
      ? `${answer.total_groups} groups, ${answer.images_in_groups} images; removing the copies would free ${formatBytes(answer.bytes_freed)}. ` +
        "The framed picture of each group is the one to keep (most pixels, then the largest file, then the oldest). Nothing is moved or deleted here."
      : "No near-duplicates found.";
    const params = searchParams();
    $("dup-groups").replaceChildren(...groups.map((group, g) => el("section", { class: "group" },
      el("h3", { text: `Group ${g + 1} · ${group.kind} · ${group.images.length} images · ${formatBytes(group.bytes_freed)} in copies` }),
      el("ol", { class: "grid" }, ...group.images.map((image) => duplicateCard(image, params, answer.settings.metric))))));
  } catch (error) {
    $("dup-status").textContent = "";
    showError(error.message);
  }
}

// --- the map -------------------------------------------------------------------------------

const mapState = { points: [], key: "" };

function hue(label) {
  let h = 0;
  for (const c of label) h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

function drawMap(highlight) {
  const canvas = $("map");
  const ratio = window.devicePixelRatio || 1;
  const { width, height } = canvas.getBoundingClientRect();
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  const pad = 16;
  for (const p of mapState.points) {
    p.sx = pad + p.x * (width - 2 * pad);
    p.sy = pad + (1 - p.y) * (height - 2 * pad);
    ctx.fillStyle = `hsl(${hue(p.label)} 65% 50% / .8)`;
    ctx.beginPath();
    ctx.arc(p.sx, p.sy, p === highlight ? 7 : 4, 0, 2 * Math.PI);
    ctx.fill();
  }
}

async function showMap(params) {
  const modes = api.health.modes;
  if (!$("map-mode").options.length) $("map-mode").replaceChildren(...modes.map((m) => el("option", { value: m, text: m })));
  if (params.get("mode") && modes.includes(params.get("mode"))) $("map-mode").value = params.get("mode");
  if (params.get("method")) $("map-method").value = params.get("method");
  const key = `mode=${$("map-mode").value}&method=${$("map-method").value}`;
  if (mapState.key === key) return drawMap();
  $("map-status").textContent = $("map-method").value === "umap" ? "Projecting (UMAP takes a while the first time)…" : "Projecting…";
  try {
    const answer = await getJSON(`/api/map?${key}`);
    if (answer.pending) return askAgain("map", () => showMap(parseHash().params), $("map-status"), answer.message);
    mapState.points = answer.points;
    mapState.key = key;
    $("map-status").textContent = `${answer.points.length} of ${answer.total} images · ${answer.method.toUpperCase()} of ${answer.mode} · colour = folder · hover to see, click to search`;
    drawMap();
  } catch (error) {
    $("map-status").textContent = "";
    showError(error.message);
  }
}

function nearestPoint(event) {
  const box = $("map").getBoundingClientRect();
  const x = event.clientX - box.left, y = event.clientY - box.top;
  let best = null, bestDistance = 12 * 12;
  for (const p of mapState.points) {
    const d = (p.sx - x) ** 2 + (p.sy - y) ** 2;
    if (d < bestDistance) best = p, bestDistance = d;
  }
  return { best, x, y };
}

function setUpMap() {
  const canvas = $("map"), tip = $("map-tip");
  canvas.addEventListener("mousemove", (event) => {
    const { best, x, y } = nearestPoint(event);
    tip.hidden = !best;
    if (!best) return drawMap();
    const img = tip.querySelector("img");
    if (img.getAttribute("src") !== best.thumbnail) img.src = best.thumbnail;
    tip.querySelector("span").textContent = best.path;
    tip.style.left = `${Math.min(x + 14, canvas.clientWidth - 190)}px`;
    tip.style.top = `${Math.max(4, y - 200)}px`;
    drawMap(best);
  });
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; drawMap(); });
  canvas.addEventListener("click", (event) => {
    const { best } = nearestPoint(event);
    if (best) location.hash = `#/similar/${best.id}?${searchParams()}`;
  });
  const change = () => { location.hash = `#/map?mode=${$("map-mode").value}&method=${$("map-method").value}`; };
  $("map-mode").addEventListener("change", change);
  $("map-method").addEventListener("change", change);
  window.addEventListener("resize", () => { if (!$("map-view").hidden) drawMap(); });
}

// --- start ---------------------------------------------------------------------------------

function setUpSearch() {
  const drop = $("drop");
  $("files").addEventListener("change", () => { searchFiles($("files").files); $("files").value = ""; });
  for (const name of ["dragenter", "dragover"]) drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const name of ["dragleave", "drop"]) drop.addEventListener(name, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); searchFiles(e.dataTransfer.files); });
  // A photo dropped beside the target must not make the browser navigate away to it.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  document.addEventListener("paste", (e) => {
    const files = Array.from(e.clipboardData.files || []).filter((f) => f.type.startsWith("image/"));
    if (files.length) searchFiles(files);
  });
  $("mode").addEventListener("change", () => { fillMetrics(null); rerun(); });
  $("metric").addEventListener("change", rerun);
  $("top-k").addEventListener("change", rerun);
}

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

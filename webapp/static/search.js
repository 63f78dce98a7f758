// The search view: a dropped photo or a collection image as the query, the result grid.
"use strict";

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

// The results on show, for the viewer to step through: [{id, path, score, ...}] and their answer.
const current = { hits: [], answer: null };

function fillMetrics(wanted) {
  const mode = currentMode();
  const metrics = api.health.metrics[mode] || [];
  const keep = wanted && metrics.includes(wanted) ? wanted : api.health.default_metrics[mode];
  $("metric").replaceChildren(...metrics.map((m) => el("option", { value: m, text: METRIC_NAMES[m] || m })));
  $("metric").value = keep;
  $("hash-choice").hidden = $("mode").value !== "hash";
}

function resultCard(hit, i, answer, params) {
  const link = el("a", { class: "card", href: `#/similar/${hit.id}?${params}`, title: `${hit.path}\nsearch by this picture` },
    el("img", { src: hit.thumbnail, alt: hit.path, loading: "lazy", width: "256", height: "256" }),
    el("span", { class: "rank", text: `${i + 1}` }),
    el("span", { class: "meta" },
      el("span", { class: "score", text: formatScore(hit.score, answer.metric), title: `distance ${hit.score}` }),
      el("span", { class: "path", text: hit.path })));
  const view = el("button", { class: "view", type: "button", title: "view the whole picture and its details", "aria-label": `view ${hit.path}` });
  view.addEventListener("click", () => openViewer(hit.id));
  return el("li", {}, link, view);
}

function renderResults(list, answer, target = $("results")) {
  const params = searchParams();
  list = list || [];
  current.hits = list;
  current.answer = answer;
  target.replaceChildren(...list.map((hit, i) => resultCard(hit, i, answer, params)));
  $("status").textContent = list.length
    ? `${list.length} most similar pictures by ${modeName(answer.mode).toLowerCase()}, best first`
    : "No results: the collection has no other extracted image.";
  $("timing").textContent = `Last search: ${answer.took_ms} ms on the server (${answer.mode}, ${answer.metric}).` +
    (answer.took_ms > 150 && answer.metric === "cosine" && (api.health.metrics[answer.mode] || []).includes("ann_cosine")
      ? " Tip: Advanced → Distance → \u201ccosine, fast\u201d answers large collections in milliseconds." : "");
}

function showQuery(imageUrl, title, path, id) {
  const img = el("img", { src: imageUrl, alt: "" });
  img.addEventListener("error", () => img.remove());
  const parts = [img, el("div", { class: "what" }, el("b", { text: title }), el("span", { class: "path muted", text: path }))];
  if (id) {
    const view = el("button", { class: "plain", type: "button", text: "View", title: "view the whole picture and its details" });
    view.addEventListener("click", () => openViewer(id));
    parts.push(view);
  }
  $("query").replaceChildren(...parts);
  $("query").hidden = false;
}

// While a search runs the old results stay, dimmed, under a spinner; the page goes to the top.
function setBusy(on) {
  $("results").classList.toggle("busy", on);
  $("spinner").hidden = !on;
  if (on) $("results").setAttribute("aria-busy", "true");
  else $("results").removeAttribute("aria-busy");
}

function failed(message) {
  $("status").textContent = "";
  $("query").hidden = true; // the previous query's bar would claim these (absent) results
  $("results").replaceChildren();
  current.hits = [];
  showError(message);
}

async function showSimilar(id) {
  const params = searchParams();
  const mine = ++shown;
  window.scrollTo(0, 0);
  setBusy(true);
  try {
    const [info, answer] = await Promise.all([
      getJSON(`/api/images/${id}`),
      getJSON(`/api/similar/${id}?mode=${params.get("mode")}&metric=${params.get("metric")}&top_k=${params.get("k")}`),
    ]);
    if (mine !== shown) return;
    showQuery(info.thumbnail, "More like this one", info.path, info.id);
    renderResults(answer.results, answer);
  } catch (error) {
    if (mine === shown) failed(error.message);
  } finally {
    if (mine === shown) setBusy(false);
  }
}

function showUpload(state) {
  shown++;
  window.scrollTo(0, 0);
  setBusy(false);
  showQuery(state.preview, state.names.length > 1 ? `${state.names.length} photos combined` : "Your photo", state.names.join(", "));
  renderResults(state.results, state.answer);
}

async function searchFiles(files) {
  files = Array.from(files || []).filter((f) => f.size > 0 || f.name);
  if (!files.length) return;
  lastUpload = files;
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name || "pasted image");
  form.append("mode", currentMode());
  form.append("metric", $("metric").value);
  form.append("top_k", $("top-k").value);
  const mine = ++shown;
  if (parseHash().parts[0] === "duplicates" || parseHash().parts[0] === "map") location.hash = "#/";
  window.scrollTo(0, 0);
  $("status").textContent = `Searching with ${files.length > 1 ? files.length + " photos" : files[0].name || "your photo"}…`;
  showError("");
  setBusy(true);
  try {
    const answer = await getJSON("/api/search", { method: "POST", body: form });
    if (mine !== shown) return;
    const state = { results: answer.results, answer, names: files.map((f) => f.name || "pasted image"),
                    preview: URL.createObjectURL(files[0]), token: `${Date.now()}-${mine}` };
    history.pushState(state, "", `#/upload?${searchParams()}`);
    route();
  } catch (error) {
    if (mine === shown) failed(error.message);
  } finally {
    if (mine === shown) setBusy(false);
  }
}

function rerun() {
  const { parts } = parseHash();
  if (parts[0] === "similar") history.pushState(null, "", `#/similar/${parts[1]}?${searchParams()}`), route();
  else if (parts[0] === "upload" && lastUpload) searchFiles(lastUpload);
}

function imageFiles(transfer) {
  return Array.from((transfer && transfer.files) || []).filter((f) => !f.type || f.type.startsWith("image/"));
}

function setFit(fit) {
  $("results").classList.toggle("fit", fit);
  $("fit").setAttribute("aria-pressed", String(fit));
  $("fit").textContent = fit ? "Fill squares" : "Whole pictures";
  try { localStorage.setItem("fit", fit ? "1" : ""); } catch (e) { /* private mode: not remembered */ }
}

function setUpSearch() {
  $("files").addEventListener("change", () => { searchFiles($("files").files); $("files").value = ""; });
  // A photo dropped anywhere on the page searches (and never makes the browser navigate to it).
  let depth = 0;
  const overlay = $("drop-overlay");
  const dragging = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files");
  window.addEventListener("dragenter", (e) => { if (dragging(e)) { depth++; overlay.hidden = false; } });
  window.addEventListener("dragleave", () => { if (--depth <= 0) { depth = 0; overlay.hidden = true; } });
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    overlay.hidden = true;
    searchFiles(imageFiles(e.dataTransfer));
  });
  document.addEventListener("paste", (e) => {
    const files = imageFiles(e.clipboardData);
    if (files.length) searchFiles(files);
  });
  $("mode").addEventListener("change", () => { fillMetrics(null); rerun(); });
  $("hash").addEventListener("change", () => { fillMetrics($("metric").value); rerun(); });
  $("metric").addEventListener("change", rerun);
  $("top-k").addEventListener("change", rerun);
  $("fit").addEventListener("click", () => setFit(!$("results").classList.contains("fit")));
  let fit = false;
  try { fit = localStorage.getItem("fit") === "1"; } catch (e) { /* private mode */ }
  setFit(fit);
}

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

// The results on show, for the viewer to step through: [{id, path, score, ...}], their answer and
// the marks (+ / −) they were searched with.
const current = { hits: [], answer: null, marks: { like: [], unlike: [] } };

// A click on + or − toggles the mark and searches again at once (Back undoes it).
function mark(id, kind) {
  const other = kind === "like" ? "unlike" : "like";
  const marks = { like: current.marks.like.slice(), unlike: current.marks.unlike.slice() };
  marks[kind] = marks[kind].includes(id) ? marks[kind].filter((x) => x !== id) : marks[kind].concat(id);
  marks[other] = marks[other].filter((x) => x !== id);
  searchAgain(marks);
}

function searchAgain(marks) {
  const { parts } = parseHash();
  if (parts[0] === "similar") {
    history.pushState(null, "", `#/similar/${parts[1]}?${searchParams()}${marksQuery(marks)}`);
    route();
  } else if (parts[0] === "upload" && lastUpload) {
    searchFiles(lastUpload, marks);
  }
}

function marksStatus() {
  const { like, unlike } = current.marks;
  if (!like.length && !unlike.length) return null;
  const clear = el("button", { class: "plain small", type: "button", text: "Clear the marks" });
  clear.addEventListener("click", () => searchAgain({ like: [], unlike: [] }));
  return el("span", { class: "marked" },
    ` · ${like.length} marked + (more like these), ${unlike.length} marked − (left out, less like these) `, clear);
}

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
    el("span", { class: "meta" }, scoreBadge(hit, answer), el("span", { class: "path", text: hit.path })));
  const view = el("button", { class: "view", type: "button", title: "view the whole picture and its details", "aria-label": `view ${hit.path}` });
  view.addEventListener("click", () => openViewer(hit.id));
  const marks = current.marks;
  const plus = el("button", { class: "mark plus", type: "button", text: "+", title: "more like this",
                              "aria-label": `more like ${hit.path}`, "aria-pressed": String(marks.like.includes(hit.id)) });
  const minus = el("button", { class: "mark minus", type: "button", text: "−", title: "less like this",
                               "aria-label": `less like ${hit.path}`, "aria-pressed": "false" });
  plus.addEventListener("click", () => mark(hit.id, "like"));
  minus.addEventListener("click", () => mark(hit.id, "unlike"));
  return el("li", {}, link, view, el("span", { class: "marks" }, plus, minus));
}

function renderResults(list, answer, target = $("results")) {
  const params = searchParams();
  list = list || [];
  current.hits = list;
  current.answer = answer;
  const cards = list.map((hit, i) => resultCard(hit, i, answer, params));
  if (list.length && answer.labels) {
    const last = lastSimilar(list, answer);
    const text = last < 0 ? "Nothing in the collection is similar; the closest pictures:"
      : last === list.length - 1 ? `All ${list.length} are at least similar: ask for more results to see where similarity ends.`
      : "Below this line: only loosely related or unrelated pictures.";
    cards.splice(last + 1, 0, el("li", { class: "divider", role: "separator" }, el("span", { text })));
  }
  target.replaceChildren(...cards);
  $("status").replaceChildren(list.length
    ? `${list.length} most similar pictures by ${modeName(answer.mode).toLowerCase()}` +
      `${filterQuery(searchParams()) ? " that pass the filters" : ""}, ${answer.sort === "date" || $("sort").value === "date" ? "newest" : "best"} first`
    : filterQuery(searchParams()) ? "No picture passes the filters." : "No results: the collection has no other extracted image.",
    marksStatus() || "");
  $("timing").textContent = `Last search: ${answer.took_ms} ms on the server (${answer.mode}, ${answer.metric}).` +
    (answer.took_ms > 150 && answer.metric === "cosine" && (api.health.metrics[answer.mode] || []).includes("ann_cosine")
      ? " Tip: Advanced → Distance → \u201ccosine, fast\u201d answers large collections in milliseconds." : "");
}

function showQuery(imageUrl, title, path, id, copies) {
  const img = el("img", { src: imageUrl, alt: "" });
  img.addEventListener("error", () => img.remove());
  const parts = [img, el("div", { class: "what" }, el("b", { text: title }), el("span", { class: "path muted", text: path }),
    copies && copies.length ? el("span", { class: "copies", text: `In your collection: ${copies.join(", ")}` }) : null)];
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
  const marks = marksOf(parseHash().params);
  const feedback = marks.like.map((i) => `&like=${i}`).join("") + marks.unlike.map((i) => `&unlike=${i}`).join("");
  const mine = ++shown;
  window.scrollTo(0, 0);
  setBusy(true);
  try {
    const [info, answer] = await Promise.all([
      getJSON(`/api/images/${id}`),
      getJSON(`/api/similar/${id}?mode=${params.get("mode")}&metric=${params.get("metric")}&top_k=${params.get("k")}${feedback}${filterQuery(params)}`),
    ]);
    if (mine !== shown) return;
    current.marks = marks;
    showQuery(info.thumbnail, "More like this one", info.path, info.id, answer.in_collection);
    renderResults(answer.results, answer);
  } catch (error) {
    if (mine === shown) failed(error.message);
  } finally {
    if (mine === shown) setBusy(false);
  }
}

function showUpload(state) {
  shown++;
  current.marks = state.marks || { like: [], unlike: [] };
  window.scrollTo(0, 0);
  setBusy(false);
  showQuery(state.preview, state.names.length > 1 ? `${state.names.length} photos combined` : "Your photo", state.names.join(", "), null,
            state.answer.in_collection);
  renderResults(state.results, state.answer);
}

async function searchFiles(files, marks = { like: [], unlike: [] }) {
  files = Array.from(files || []).filter((f) => f.size > 0 || f.name);
  if (!files.length) return;
  lastUpload = files;
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name || "pasted image");
  form.append("mode", currentMode());
  form.append("metric", $("metric").value);
  form.append("top_k", $("top-k").value);
  for (const id of marks.like) form.append("like", id);
  for (const id of marks.unlike) form.append("unlike", id);
  const mine = ++shown;
  if (parseHash().parts[0] === "duplicates" || parseHash().parts[0] === "map") location.hash = "#/";
  window.scrollTo(0, 0);
  $("status").textContent = `Searching with ${files.length > 1 ? files.length + " photos" : files[0].name || "your photo"}…`;
  showError("");
  setBusy(true);
  try {
    const answer = await getJSON(`/api/search?${filterQuery(searchParams()).slice(1)}`, { method: "POST", body: form });
    if (mine !== shown) return;
    const state = { results: answer.results, answer, names: files.map((f) => f.name || "pasted image"),
                    preview: URL.createObjectURL(files[0]), token: `${Date.now()}-${mine}`, marks };
    history.pushState(state, "", `#/upload?${searchParams()}${marksQuery(marks)}`);
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
  for (const name of FILTERS) $(name).addEventListener("change", rerun);
  $("fit").addEventListener("click", () => setFit(!$("results").classList.contains("fit")));
  let fit = false;
  try { fit = localStorage.getItem("fit") === "1"; } catch (e) { /* private mode */ }
  setFit(fit);
}

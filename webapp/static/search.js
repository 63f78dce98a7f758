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

function fillMetrics(wanted) {
  const mode = $("mode").value;
  const metrics = api.health.metrics[mode] || [];
  const keep = wanted && metrics.includes(wanted) ? wanted : api.health.default_metrics[mode];
  $("metric").replaceChildren(...metrics.map((m) => el("option", { value: m, text: m })));
  $("metric").value = keep;
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

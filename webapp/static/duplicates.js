// The duplicates view: groups of copies (or of similar shots), the keeper framed, and the
// reviewer's actions: "Not duplicates", "Keep this one instead", move the copies into the
// review folder (and undo), compare two members side by side. The server remembers decisions
// and moves; every action is a POST the server refuses from other sites. Nothing is deleted.
"use strict";

const dups = { kind: "copies", threshold: "", anyOrientation: false, groups: [], metric: "cosine", compare: null };

async function postJSON(url, body) {
  return getJSON(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

function dupQuery() {
  const params = new URLSearchParams({ kind: dups.kind });
  if (dups.threshold !== "") params.set("threshold", dups.threshold);
  if (dups.anyOrientation) params.set("any_orientation", "true");
  return params;
}

function dupToolbar() {
  if ($("dup-toolbar")) return;
  const kinds = el("span", { class: "dup-kinds", role: "tablist" },
    ...[["copies", "Copies"], ["similar", "Similar shots"]].map(([kind, label]) =>
      el("button", { type: "button", class: "plain dup-kind", "data-kind": kind, text: label })));
  const threshold = el("input", { id: "dup-threshold", type: "number", min: "0", max: "1", step: "0.01",
    placeholder: "default", "aria-label": "Threshold (largest distance)", title: "largest distance between copies" });
  const turned = el("input", { id: "dup-any-orientation", type: "checkbox",
    title: "also count mirrored and 90-degree turned copies as copies" });
  const bar = el("div", { id: "dup-toolbar", class: "dup-toolbar" }, kinds,
    el("label", { text: "Threshold " }, threshold),
    el("label", { class: "dup-check" }, turned, "Mirrored and turned copies"),
    el("button", { id: "dup-move-all", type: "button", class: "plain", text: "Move the copies of all groups shown" }),
    el("span", { id: "dup-moves", class: "dup-moves" }));
  $("duplicates-view").prepend(bar);
  kinds.addEventListener("click", (event) => {
    const kind = event.target.getAttribute("data-kind");
    if (kind && kind !== dups.kind) { dups.kind = kind; showDuplicates(); }
  });
  threshold.addEventListener("change", () => { dups.threshold = threshold.value.trim(); showDuplicates(); });
  turned.addEventListener("change", () => { dups.anyOrientation = turned.checked; showDuplicates(); });
  $("dup-move-all").addEventListener("click", () => moveGroups(dups.groups.map((g) => g.keep)));
}

function facts(image, metric) {
  const size = image.width ? `${image.width}×${image.height} px` : "size unknown";
  return `${size} · ${formatBytes(image.size)} · ${image.date}${image.date_source === "exif" ? " (taken)" : ""} · ` +
    `${image.folder}` + (image.keep ? "" : ` · ${formatScore(image.distance, metric)}`);
}

function duplicateCard(image, group, metric) {
  const picture = el("img", { src: image.thumbnail, alt: image.path, loading: "lazy", width: "256", height: "256",
    class: "openable", title: "Open in the viewer" });
  // The viewer steps through this group's members (viewer.js).
  picture.addEventListener("click", () => openViewer(image.id, group.images.map((m) => ({ id: m.id, path: m.path }))));
  const card = el("div", { class: image.keep ? "card keep" : "card", title: image.path },
    picture,
    el("span", { class: "rank", text: image.keep ? "keep" : image.kind }),
    el("span", { class: "meta" }, el("span", { class: "path", text: image.path }),
      el("span", { class: "facts", text: facts(image, metric) }),
      el("span", { class: "reason muted", text: image.keep ? "kept" : `kept instead: ${image.reason}` })));
  const actions = el("span", { class: "dup-actions" },
    el("button", { type: "button", class: "plain", "data-act": "compare", text: "Compare" }));
  if (!image.keep) {
    actions.append(el("button", { type: "button", class: "plain", "data-act": "keep", text: "Keep this one instead" }),
      el("button", { type: "button", class: "plain", "data-act": "apart", text: "Not a duplicate" }));
  }
  actions.addEventListener("click", (event) => memberAction(event.target.getAttribute("data-act"), image, group));
  return el("li", {}, card, actions);
}

function groupSection(group, g, metric) {
  const ids = group.images.map((m) => m.id);
  const header = el("h3", { text: `Group ${g + 1} · ${group.kind} · ${group.images.length} images` +
    (group.kind === "similar" ? " · different pictures" : ` · ${formatBytes(group.bytes_freed)} in copies`) });
  const buttons = el("div", { class: "dup-actions" },
    el("button", { type: "button", class: "plain", "data-act": "apart", text: "Not duplicates" }));
  if (group.kind !== "similar") {
    buttons.append(el("button", { type: "button", class: "plain", "data-act": "move", text: "Move the copies to the review folder" }));
  }
  buttons.addEventListener("click", async (event) => {
    const act = event.target.getAttribute("data-act");
    if (act === "apart") await act_(() => postJSON("/api/duplicates/not-duplicates", { ids }), "Remembered: not duplicates.");
    if (act === "move") await moveGroups([group.keep]);
  });
  return el("section", { class: "group", "data-keep": String(group.keep) }, header, buttons,
    el("ol", { class: "grid" }, ...group.images.map((image) => duplicateCard(image, group, metric))));
}

async function act_(call, done) {
  try {
    const answer = await call();
    await showDuplicates();
    $("dup-status").textContent = `${done} ${$("dup-status").textContent}`;
    return answer;
  } catch (error) {
    showError(error.message);
    return null;
  }
}

async function memberAction(act, image, group) {
  const ids = group.images.map((m) => m.id);
  if (act === "compare") return openCompare(group, group.images[0], image.keep ? group.images[1] : image);
  if (act === "keep") return act_(() => postJSON("/api/duplicates/keep", { ids, member: image.id }), "Remembered: keep this one.");
  if (act === "apart") {
    return act_(() => postJSON("/api/duplicates/not-duplicates", { ids, member: image.id }), "Remembered: not a duplicate.");
  }
}

async function moveGroups(keepers) {
  if (!keepers.length || dups.kind !== "copies") return;
  const body = { keepers };
  if (dups.threshold !== "") body.threshold = Number(dups.threshold);
  if (dups.anyOrientation) body.any_orientation = true;
  const answer = await act_(() => postJSON("/api/duplicates/move", body), "");
  if (answer) {
    $("dup-status").textContent = `Moved ${answer.moved} files (${formatBytes(answer.bytes)}) to the review folder; ` +
      `undo below. ${answer.notes.join(" ")}`;
  }
}

async function showMoves() {
  const box = $("dup-moves");
  try {
    const { moves } = await getJSON("/api/duplicates/moves");
    box.replaceChildren(...moves.filter((m) => m.still_out).slice(0, 5).map((m) =>
      el("button", { type: "button", class: "plain dup-undo", "data-manifest": m.manifest,
        text: `Undo the move of ${m.still_out} files` })));
  } catch (error) {
    box.replaceChildren();
  }
  box.onclick = async (event) => {
    const manifest = event.target.getAttribute("data-manifest");
    if (!manifest) return;
    const answer = await act_(() => postJSON("/api/duplicates/undo", { manifest }), "");
    if (answer) $("dup-status").textContent = `${answer.restored} files are back in the collection. ${$("dup-status").textContent}`;
  };
}

// Compare: two members at full size side by side; "Swap" (or a swipe) shows one over the other.
function openCompare(group, a, b) {
  if (!b) return;
  dups.compare = { a, b, single: false };
  let box = $("dup-compare");
  if (!box) {
    box = el("div", { id: "dup-compare", class: "dup-compare", role: "dialog", "aria-label": "Compare two pictures" });
    document.body.append(box);
    box.addEventListener("click", (event) => {
      const act = event.target.getAttribute("data-act");
      if (act === "close") { box.hidden = true; return; }
      if (act === "swap") { [dups.compare.a, dups.compare.b] = [dups.compare.b, dups.compare.a]; dups.compare.single = true; }
      if (act === "side") dups.compare.single = false;
      drawCompare();
    });
    document.addEventListener("keydown", (event) => { if (event.key === "Escape") box.hidden = true; });
    let startX = null;
    box.addEventListener("touchstart", (event) => { startX = event.touches[0].clientX; }, { passive: true });
    box.addEventListener("touchend", (event) => {
      if (startX !== null && Math.abs(event.changedTouches[0].clientX - startX) > 40) {
        [dups.compare.a, dups.compare.b] = [dups.compare.b, dups.compare.a];
        dups.compare.single = true;
        drawCompare();
      }
      startX = null;
    });
  }
  box.hidden = false;
  drawCompare();
}

function drawCompare() {
  const { a, b, single } = dups.compare;
  const panel = (image) => el("figure", {},
    el("img", { src: image.image, alt: image.path }),
    el("figcaption", { text: `${image.keep ? "keep · " : ""}${image.path} · ${image.pixels.toLocaleString()} pixels · ` +
      `${image.size.toLocaleString()} bytes · ${image.date} · distance ${formatScore(image.distance, dups.metric)}` }));
  $("dup-compare").replaceChildren(
    el("div", { class: "dup-compare-bar" },
      el("button", { type: "button", class: "plain", "data-act": "swap", text: single ? "Swap" : "One at a time (swap)" }),
      el("button", { type: "button", class: "plain", "data-act": "side", text: "Side by side" }),
      el("button", { type: "button", class: "plain", "data-act": "close", text: "Close" })),
    el("div", { class: single ? "dup-pair single" : "dup-pair" }, panel(a), single ? null : panel(b)));
}

async function showDuplicates() {
  dupToolbar();
  for (const button of document.querySelectorAll(".dup-kind")) {
    button.setAttribute("aria-selected", String(button.getAttribute("data-kind") === dups.kind));
  }
  $("dup-move-all").hidden = dups.kind !== "copies";
  $("dup-status").textContent = dups.kind === "copies" ? "Finding groups of copies…" : "Finding similar shots…";
  $("dup-groups").replaceChildren();
  showMoves();
  try {
    const answer = await getJSON(`/api/duplicates?${dupQuery()}`);
    if (answer.pending) return askAgain("duplicates", showDuplicates, $("dup-status"), answer.message);
    dups.groups = answer.groups || [];
    dups.metric = answer.settings.metric;
    const similar = dups.kind === "similar";
    $("dup-status").textContent = dups.groups.length
      ? `${answer.total_groups} groups, ${answer.images_in_groups} images` +
        (similar ? " (different shots of one scene: nothing is counted as freed). "
          : `; moving the copies would free ${formatBytes(answer.bytes_freed)}. `) +
        "The framed picture is the one to keep: the original (most pixels, then the oldest date taken, then a name " +
        "without copy marks, then the largest file). Moves go to the review folder and can be undone; nothing is deleted."
      : similar ? "No similar shots found." : "No duplicates found.";
    $("dup-groups").replaceChildren(...dups.groups.map((group, g) => groupSection(group, g, dups.metric)));
  } catch (error) {
    $("dup-status").textContent = "";
    showError(error.message);
  }
}

// The viewer: one picture fitted to the screen, with its facts. ←/→ (or a swipe) step through
// the results on show, Esc closes, "More like this" searches by it. The URL records it
// (…&view=ID): opening pushes a history entry, so Back closes it; stepping replaces that entry.
// Other views open it with openViewer(id, list), list being the [{id, path, score?}] to step through.
"use strict";

const viewer = { list: [], index: -1, id: null, pushed: false, asked: 0 };

function viewerHash(id) {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  if (id == null) params.delete("view");
  else params.set("view", id);
  const text = params.toString();
  return `#${path || "/"}${text ? "?" + text : ""}`;
}

function openViewer(id, list) {
  viewer.list = list || current.hits;
  viewer.pushed = true;
  history.pushState(history.state, "", viewerHash(id));
  route();
}

function stepViewer(by) {
  const next = viewer.list[viewer.index + by];
  if (!next || $("viewer").hidden) return;
  history.replaceState(history.state, "", viewerHash(next.id));
  route();
}

function closeViewer() {
  if ($("viewer").hidden) return;
  if (viewer.pushed) return history.back(); // the entry before the viewer: Forward opens it again
  history.replaceState(history.state, "", viewerHash(null));
  route();
}

// Called by route() with the URL's parameters: shows the picture named by "view", or hides the viewer.
function syncViewer(params) {
  const id = /^\d+$/.test(params.get("view") || "") ? Number(params.get("view")) : null;
  if (id === null) {
    viewer.pushed = false;
    viewer.id = null;
    $("viewer").hidden = true;
    document.body.classList.remove("viewing");
    return;
  }
  if (!viewer.list.some((hit) => hit.id === id)) viewer.list = current.hits;
  viewer.index = viewer.list.findIndex((hit) => hit.id === id);
  $("viewer").hidden = false;
  document.body.classList.add("viewing");
  if (viewer.id !== id) showInViewer(id, viewer.list[viewer.index]);
  viewer.id = id;
  $("viewer-prev").disabled = viewer.index <= 0;
  $("viewer-next").disabled = viewer.index < 0 || viewer.index >= viewer.list.length - 1;
  $("viewer-pos").textContent = viewer.index >= 0 ? `${viewer.index + 1} of ${viewer.list.length}` : "";
}

function fact(name, value) {
  return value ? [el("dt", { text: name }), el("dd", { text: value })] : [];
}

function formatDate(iso) {
  const date = new Date(iso);
  return isNaN(date) ? iso : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

async function showInViewer(id, hit) {
  const mine = ++viewer.asked;
  const img = $("viewer-img");
  img.removeAttribute("src");
  img.src = `/api/image/${id}`;
  img.alt = hit ? hit.path : "";
  $("viewer-name").textContent = hit ? hit.path.split("/").pop() : "";
  $("viewer-score").replaceChildren(...(hit && hit.score !== undefined && current.answer ? [scoreBadge(hit, current.answer)] : []));
  $("viewer-facts").replaceChildren();
  $("viewer-more").href = `#/similar/${id}?${searchParams()}`;
  try {
    const info = await getJSON(`/api/images/${id}`);
    if (mine !== viewer.asked) return;
    img.alt = info.path;
    $("viewer-name").textContent = info.name;
    $("viewer-facts").replaceChildren(
      ...fact("Folder", info.folder || "(the collection's top folder)"),
      ...fact("Size", info.width && info.height ? `${info.width} × ${info.height} pixels, ${formatBytes(info.size)}` : formatBytes(info.size)),
      ...fact(info.taken ? "Taken" : "File date", info.taken ? formatDate(info.taken) : info.modified && formatDate(info.modified)),
      ...fact("Camera", info.camera));
  } catch (error) {
    if (mine === viewer.asked) $("viewer-facts").replaceChildren(...fact("Details", error.message));
  }
}

function setUpViewer() {
  $("viewer-close").addEventListener("click", closeViewer);
  $("viewer-prev").addEventListener("click", () => stepViewer(-1));
  $("viewer-next").addEventListener("click", () => stepViewer(1));
  $("viewer-more").addEventListener("click", () => { viewer.pushed = false; });
  document.addEventListener("keydown", (e) => {
    if ($("viewer").hidden || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "Escape") closeViewer();
    else if (e.key === "ArrowRight") stepViewer(1);
    else if (e.key === "ArrowLeft") stepViewer(-1);
    else return;
    e.preventDefault();
  });
  // A horizontal swipe steps, as in a phone's photo app; a mostly vertical one scrolls the facts.
  let start = null;
  const stage = $("viewer");
  stage.addEventListener("touchstart", (e) => { start = e.touches.length === 1 ? e.touches[0] : null; }, { passive: true });
  stage.addEventListener("touchend", (e) => {
    if (!start) return;
    const end = e.changedTouches[0], dx = end.clientX - start.clientX, dy = end.clientY - start.clientY;
    start = null;
    if (Math.abs(dx) > 50 && Math.abs(dx) > 2 * Math.abs(dy)) stepViewer(dx < 0 ? 1 : -1);
  });
}

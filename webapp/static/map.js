// The similarity map: a 2-D projection of one mode's vectors (pictures that look alike lie
// close), coloured by folder: the largest folders get their own colour and a legend, the rest
// are grey. Wheel or buttons zoom, dragging pans. Hover shows a preview beside the point (never
// over it); on a touch screen a tap shows it and a second tap on the same point searches.
"use strict";

const mapState = { points: [], key: "", zoom: 1, panX: 0, panY: 0, colours: new Map(), chosen: null };
const PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324"];
const OTHER = "rgba(140, 140, 140, .55)";

function folderColours(points) {
  const sizes = new Map();
  for (const p of points) sizes.set(p.label, (sizes.get(p.label) || 0) + 1);
  const largest = [...sizes.entries()].sort((a, b) => b[1] - a[1]).slice(0, PALETTE.length);
  mapState.colours = new Map(largest.map(([label], i) => [label, PALETTE[i]]));
  const others = points.length - largest.reduce((sum, [, n]) => sum + n, 0);
  const swatch = (colour) => { const span = el("span", { class: "swatch" }); span.style.background = colour; return span; };
  $("map-legend").replaceChildren( // the CSP allows no style attributes: colours are set through the DOM
    ...largest.map(([label, n], i) => el("li", {}, swatch(PALETTE[i]), `${label || "(top folder)"} · ${n}`)),
    ...(others ? [el("li", {}, swatch(OTHER), `other folders · ${others}`)] : []));
}

function drawMap(highlight) {
  const canvas = $("map");
  const ratio = window.devicePixelRatio || 1;
  const { width, height } = canvas.getBoundingClientRect();
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  const pad = 16, { zoom, panX, panY } = mapState;
  const grey = [], coloured = [];
  for (const p of mapState.points) {
    p.sx = (pad + p.x * (width - 2 * pad) - width / 2) * zoom + width / 2 + panX;
    p.sy = (pad + (1 - p.y) * (height - 2 * pad) - height / 2) * zoom + height / 2 + panY;
    (mapState.colours.has(p.label) ? coloured : grey).push(p);
  }
  for (const p of grey.concat(coloured)) { // the legend's folders on top
    ctx.fillStyle = mapState.colours.get(p.label) || OTHER;
    ctx.beginPath();
    ctx.arc(p.sx, p.sy, p === highlight ? 7 : 4, 0, 2 * Math.PI);
    ctx.fill();
  }
  if (highlight) {
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(highlight.sx, highlight.sy, 9, 0, 2 * Math.PI);
    ctx.stroke();
  }
}

async function showMap(params) {
  const modes = api.health.modes;
  if (!$("map-mode").options.length) $("map-mode").replaceChildren(...modes.map((m) => el("option", { value: m, text: modeName(m) })));
  if (params.get("mode") && modes.includes(params.get("mode"))) $("map-mode").value = params.get("mode");
  if (params.get("method")) $("map-method").value = params.get("method");
  const key = `mode=${$("map-mode").value}&method=${$("map-method").value}`;
  if (mapState.key === key) return drawMap();
  const started = mapState.started && mapState.asked === key ? mapState.started : Date.now();
  mapState.started = started;
  mapState.asked = key;
  $("map-status").textContent = $("map-method").value === "umap" ? "Placing the pictures (UMAP takes a while the first time)…" : "Placing the pictures…";
  try {
    const answer = await getJSON(`/api/map?${key}`);
    if (answer.pending) {
      const seconds = Math.round((Date.now() - started) / 1000);
      return askAgain("map", () => showMap(parseHash().params), $("map-status"),
                      `${answer.message.replace(/; ask again.*/, "")}` +
                      `${answer.percent != null ? `: layout ${answer.percent}% done` : ""}, ${seconds} s so far`);
    }
    mapState.points = answer.points;
    mapState.key = key;
    mapState.started = null;
    resetView();
    folderColours(answer.points);
    $("map-status").textContent = `${answer.points.length} of ${answer.total} images, placed by ${answer.method.toUpperCase()} of their ` +
      `${modeName(answer.mode).toLowerCase()}: close points look alike. Colour = folder. ` +
      (matchMedia("(hover: none)").matches ? "Tap a point to see it, tap it again to search by it." : "Hover to see, click to search.");
    drawMap();
  } catch (error) {
    $("map-status").textContent = "";
    showError(error.message);
  }
}

function resetView() {
  Object.assign(mapState, { zoom: 1, panX: 0, panY: 0, chosen: null });
}

function nearestPoint(event) {
  const box = $("map").getBoundingClientRect();
  const x = event.clientX - box.left, y = event.clientY - box.top;
  let best = null, bestDistance = 14 * 14;
  for (const p of mapState.points) {
    const d = (p.sx - x) ** 2 + (p.sy - y) ** 2;
    if (d < bestDistance) best = p, bestDistance = d;
  }
  return best;
}

// The preview goes on the side of the point with more room, its nearest edge 16 px away, so it never covers the point.
function placeTip(point, hint) {
  const canvas = $("map"), tip = $("map-tip");
  const img = tip.querySelector("img");
  if (img.getAttribute("src") !== point.thumbnail) img.src = point.thumbnail;
  tip.querySelector("span").textContent = point.path + (hint ? `\n${hint}` : "");
  tip.hidden = false;
  const w = tip.offsetWidth, h = tip.offsetHeight, W = canvas.clientWidth, H = canvas.clientHeight, gap = 16;
  const right = point.sx + gap + w <= W || point.sx < W / 2;
  let left = right ? point.sx + gap : point.sx - gap - w;
  let top = Math.min(Math.max(4, point.sy - h / 2), H - h - 4);
  if (left < 0 || left + w > W) { // too narrow for beside: above or below instead
    left = Math.min(Math.max(4, point.sx - w / 2), W - w - 4);
    top = point.sy > H / 2 ? point.sy - gap - h : point.sy + gap;
  }
  tip.style.left = `${left}px`;
  tip.style.top = `${top}px`;
}

function zoomAt(factor, x, y) {
  const canvas = $("map");
  const cx = x ?? canvas.clientWidth / 2, cy = y ?? canvas.clientHeight / 2;
  const zoom = Math.min(40, Math.max(1, mapState.zoom * factor));
  const applied = zoom / mapState.zoom;
  const w = canvas.clientWidth / 2, h = canvas.clientHeight / 2;
  mapState.panX = (mapState.panX + w - cx) * applied + cx - w;
  mapState.panY = (mapState.panY + h - cy) * applied + cy - h;
  mapState.zoom = zoom;
  if (zoom === 1) mapState.panX = mapState.panY = 0;
  $("map-tip").hidden = true;
  drawMap();
}

function setUpMap() {
  const canvas = $("map"), tip = $("map-tip");
  let drag = null;
  canvas.addEventListener("pointerdown", (event) => { drag = { x: event.clientX, y: event.clientY, moved: false }; });
  canvas.addEventListener("pointermove", (event) => {
    if (drag && event.buttons) {
      const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
      if (drag.moved || Math.abs(dx) + Math.abs(dy) > 4) {
        drag.moved = true;
        mapState.panX += dx;
        mapState.panY += dy;
        drag.x = event.clientX;
        drag.y = event.clientY;
        tip.hidden = true;
        return drawMap();
      }
    }
    if (event.pointerType === "touch") return;
    const best = nearestPoint(event);
    if (!best) { tip.hidden = true; return drawMap(); }
    placeTip(best);
    drawMap(best);
  });
  canvas.addEventListener("pointerleave", (event) => { if (event.pointerType !== "touch") { tip.hidden = true; drawMap(); } });
  canvas.addEventListener("pointerup", (event) => {
    const moved = drag && drag.moved;
    drag = null;
    if (moved) return;
    const best = nearestPoint(event);
    if (!best) { mapState.chosen = null; tip.hidden = true; return drawMap(); }
    if (event.pointerType === "touch" && mapState.chosen !== best) { // first tap: see it
      mapState.chosen = best;
      placeTip(best, "tap again to search by it");
      return drawMap(best);
    }
    location.hash = `#/similar/${best.id}?${searchParams()}`;
  });
  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    const box = canvas.getBoundingClientRect();
    zoomAt(event.deltaY < 0 ? 1.25 : 0.8, event.clientX - box.left, event.clientY - box.top);
  }, { passive: false });
  $("map-zoom-in").addEventListener("click", () => zoomAt(1.5));
  $("map-zoom-out").addEventListener("click", () => zoomAt(1 / 1.5));
  $("map-reset").addEventListener("click", () => { resetView(); tip.hidden = true; drawMap(); });
  const change = () => { location.hash = `#/map?mode=${$("map-mode").value}&method=${$("map-method").value}`; };
  $("map-mode").addEventListener("change", change);
  $("map-method").addEventListener("change", change);
  window.addEventListener("resize", () => { if (!$("map-view").hidden) drawMap(); });
}

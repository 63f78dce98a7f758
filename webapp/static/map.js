// The map view: a 2-D projection of one mode's vectors, coloured by folder.
"use strict";

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
  if (!$("map-mode").options.length) $("map-mode").replaceChildren(...modes.map((m) => el("option", { value: m, text: modeName(m) })));
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
    $("map-status").textContent = `${answer.points.length} of ${answer.total} images · ${answer.method.toUpperCase()} of ${modeName(answer.mode).toLowerCase()} · colour = folder · hover to see, click to search`;
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

// The duplicates view: groups of copies, the one to keep framed.
"use strict";

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

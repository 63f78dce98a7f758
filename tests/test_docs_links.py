"""Every relative link in README.md and docs/*.md leads somewhere: the file exists and, for a
link with #anchor, the target page has a heading with that anchor (GitHub's rule)."""
import glob
import os
import re

import pytest

from samples import ROOT

PAGES = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _prose(path):
    """The page without its fenced code blocks (a link-like text in code is not a link)."""
    lines, fenced = [], False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return "".join(lines)


def anchors(path):
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to hyphens,
    -1, -2 … for repeats."""
    seen, found = {}, set()
    for line in _prose(path).splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return found


def relative_links(path):
    for target in LINK.findall(_prose(path)):
        if not re.match(r"[a-z]+:", target):  # http:, https:, mailto: are not ours to check
            yield target


def test_there_are_pages_and_links():
    assert len(PAGES) >= 9
    assert sum(1 for page in PAGES for _ in relative_links(page)) >= 20


@pytest.mark.parametrize("page", PAGES, ids=[os.path.relpath(p, ROOT) for p in PAGES])
def test_every_relative_link_resolves(page):
    broken = []
    for target in relative_links(page):
        file_part, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(page), file_part)) if file_part else page
        if not os.path.exists(resolved):
            broken.append(f"{target}: no file {os.path.relpath(resolved, ROOT)}")
        elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    assert not broken, broken


def test_the_anchor_rule_matches_githubs():
    page = os.path.join(ROOT, "docs", "duplicates.md")
    assert "how-it-scales" in anchors(page)
    assert "thresholds-precision-against-recall" in anchors(page)

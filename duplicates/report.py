"""What the duplicate finder returns: groups of copies (or of similar shots), each member with the
facts a reviewer and the keeper rule look at. Read by find_duplicates.py, the web app and cleanup/.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from db.lookup import StoredImage
from duplicates.keeper import KeeperFacts

EXACT, COPY, SIMILAR = "exact", "copy", "similar"
KINDS = (EXACT, COPY, SIMILAR)


@dataclass
class Member:
    """One image of a group: its DB row (what the keeper rule and a reviewer look at), its
    absolute path and its distance to the keeper (0 for the keeper)."""
    image: StoredImage
    path: str  # absolute
    distance: float
    facts: KeeperFacts | None = None  # what the keeper rule looked at (path absolute)
    rank: int = 0  # place in the group's keeper order (0: the keeper)
    reason: str = "keeper"  # why it is the keeper, or why the keeper is kept rather than it
    kind: str = COPY  # to the keeper: "exact" (same bytes), "copy" or "similar"

    @property
    def id(self) -> int:
        return self.image.id

    @property
    def width(self) -> int | None:
        return self.image.width

    @property
    def height(self) -> int | None:
        return self.image.height

    @property
    def size(self) -> int:
        return self.image.size

    @property
    def mtime_ns(self) -> int:
        return self.image.mtime_ns

    @property
    def taken_ns(self) -> int | None:
        return self.facts.taken_ns if self.facts else None


@dataclass
class DuplicateGroup:
    """Copies of one picture; ``members[0]`` is the keeper, the others by distance to it."""
    kind: str  # "exact" (all byte-identical), "copy" (edits of one picture) or "similar" (other shots)
    members: list[Member]

    @property
    def keep(self) -> str:
        return self.members[0].path

    @property
    def paths(self) -> list[str]:
        return [m.path for m in self.members]

    @property
    def distances(self) -> list[float]:
        return [m.distance for m in self.members]

    @property
    def bytes_freed(self) -> int:
        """What removing every copy but the keeper would free (0 for similar shots: they are
        different pictures)."""
        return 0 if self.kind == SIMILAR else sum(m.size for m in self.members[1:])


@dataclass
class DuplicateReport:
    groups: list[DuplicateGroup]
    settings: dict = field(default_factory=dict)

    @property
    def images_in_groups(self) -> int:
        return sum(len(g.members) for g in self.groups)

    @property
    def bytes_freed(self) -> int:
        return sum(g.bytes_freed for g in self.groups)

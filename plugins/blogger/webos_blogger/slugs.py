"""Slugs: the URL name of a post, made from its title when the author gives none."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

__all__ = ["MAX_SLUG", "SLUG_SHAPE", "free_slug", "slugify"]

MAX_SLUG = 120
SLUG_SHAPE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# Room left after a generated slug for a "-<n>" suffix within MAX_SLUG.
_MAX_BASE = 100


def slugify(title: str) -> str:
    """``"Héllo, World!"`` -> ``"hello-world"``: lowercase ASCII letters and digits, hyphens."""
    # NFKD splits accented letters into letter + accent, so the ASCII pass keeps the letter.
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    slug = slug[:_MAX_BASE].rstrip("-")
    # A title with no ASCII letters or digits at all (e.g. "日本") still needs a name.
    return slug or "post"


def free_slug(base: str, taken: Iterable[str]) -> str:
    """``base``, or ``base-2``, ``base-3``... whichever comes first that is not ``taken``."""
    used = set(taken)
    if base not in used:
        return base
    n = 2
    while f"{base}-{n}" in used:
        n += 1
    return f"{base}-{n}"

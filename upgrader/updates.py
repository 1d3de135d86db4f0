"""Whether a newer wems-upgrade is published: asked of the public releases feed, in the background."""

from __future__ import annotations

from dataclasses import dataclass

#: The environment variable that points the check at another feed (tests: a local server).
FEED_VARIABLE = "WEMS_UPGRADE_RELEASES_FEED"


@dataclass(frozen=True)
class NewerRelease:
    """A release newer than this wems-upgrade: its version and the page to get it from."""

    version: str
    url: str

"""Whether a newer wems-upgrade is published: asked of the public releases feed, in the background.

The feed is the GitHub REST API's "latest release" of the project (`DEFAULT_FEED`), or the URL in the
environment variable `FEED_VARIABLE` (tests: a local server). The check is never in the way: it runs in
a daemon thread (a slow network never delays the exit), `result()` waits at most `timeout` seconds after
`start()`, and any failure (offline, DNS, proxy, timeout, HTTP error, bad JSON, no `ssl` in this build)
gives None, logged in English at info or debug level only. It only tells which version is newer and the
page to get it from: nothing is downloaded or run. The only thing sent is the request itself, whose
User-Agent names this version ("wems-upgrade/0.1.0").
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

log = logging.getLogger(__name__)

#: The environment variable that points the check at another feed (tests: a local server).
FEED_VARIABLE = "WEMS_UPGRADE_RELEASES_FEED"

#: The project's public releases, read through GitHub's REST API (one JSON object: the newest release
#: that is neither a draft nor a prerelease).
DEFAULT_FEED = "https://api.github.com/repos/wareflow/wems-upgrade/releases/latest"

#: A release feed is a few kilobytes; more is not one.
MAX_FEED_BYTES = 1 << 20


@dataclass(frozen=True)
class NewerRelease:
    """A release newer than this wems-upgrade: its version and the page to get it from."""

    version: str
    url: str


def feed_url(feed: str | None = None) -> str:
    """The feed to ask: `feed`, else the environment variable FEED_VARIABLE, else the project's GitHub releases."""
    if feed is not None:
        return feed
    return os.environ.get(FEED_VARIABLE) or DEFAULT_FEED


def _version(tag: Any) -> Version | None:
    """The version a release tag names ("v1.2.0" or "1.2.0"), None when it names none."""
    if not isinstance(tag, str):
        return None
    tag = tag.strip()
    if tag[:1] in ("v", "V"):
        tag = tag[1:]
    try:
        return Version(tag)
    except InvalidVersion:
        return None


def _page(url: Any) -> str | None:
    """A release page fit to be shown: an http(s) address of printable characters only."""
    if not isinstance(url, str) or not url.isprintable() or any(c.isspace() for c in url):
        return None
    if urllib.parse.urlsplit(url).scheme not in ("https", "http") or len(url) > 2000:
        return None
    return url


def newest(feed: Any, current: str) -> NewerRelease | None:
    """The newest final release in a feed (one release object or a list of them) if newer than `current`."""
    try:
        mine = Version(current)
    except InvalidVersion:
        log.info("update check: this version %r is not comparable", current)
        return None
    releases = feed if isinstance(feed, list) else [feed]
    best: tuple[Version, str] | None = None
    for release in releases:
        if not isinstance(release, dict) or release.get("draft") or release.get("prerelease"):
            continue
        version, page = _version(release.get("tag_name")), _page(release.get("html_url"))
        if version is None or page is None or version.is_prerelease or version.is_devrelease:
            continue
        if best is None or version > best[0]:
            best = (version, page)
    if best is None:
        log.info("update check: the feed names no final release")
        return None
    if best[0] <= mine:
        log.info("update check: %s is the newest release (this is %s)", best[0], mine)
        return None
    log.info("update check: %s is newer than %s: %s", best[0], mine, best[1])
    return NewerRelease(version=str(best[0]), url=best[1])


class UpdateCheck:
    """One look at the releases feed, in a daemon thread: `UpdateCheck(version).start()`, later `.result()`."""

    def __init__(self, current: str, feed: str | None = None, timeout: float = 2.0) -> None:
        self.current = current
        self.feed = feed_url(feed)
        self.timeout = timeout
        self._done = threading.Event()
        self._found: NewerRelease | None = None
        self._started: float | None = None

    def start(self) -> UpdateCheck:
        """Ask the feed in a daemon thread (a slow network never delays the exit); returns self."""
        if self._started is None:
            self._started = time.monotonic()
            try:
                threading.Thread(target=self._run, name="wems-upgrade update check", daemon=True).start()
            except Exception as error:  # no thread left to start: no check
                log.info("update check skipped: %s", error)
                self._done.set()
        return self

    def result(self) -> NewerRelease | None:
        """The newer release, if the feed named one within `timeout` seconds of start(); never raises."""
        try:
            if self._started is None:
                return None
            left = self.timeout - (time.monotonic() - self._started)
            if not self._done.wait(max(0.0, left)):
                log.info("update check: no answer within %s s", self.timeout)
                return None
            return self._found
        except Exception:  # pragma: no cover - waiting on an event does not fail
            return None

    def _run(self) -> None:
        try:
            self._found = self._ask()
        except Exception as error:  # offline, DNS, proxy, timeout, HTTP error, bad JSON: silent
            log.info("update check failed (%s): %s", type(error).__name__, error)
        finally:
            self._done.set()

    def _ask(self) -> NewerRelease | None:
        scheme = urllib.parse.urlsplit(self.feed).scheme
        if scheme not in ("https", "http"):
            log.info("update check skipped: the feed %r is not an http(s) address", self.feed)
            return None
        try:
            # Imported here: a build without them (the executable's spec may exclude ssl and http)
            # simply has no update check.
            if scheme == "https":
                import ssl  # noqa: F401
            from urllib import request as urlrequest
        except ImportError as error:
            log.info("update check skipped: %s", error)
            return None
        request = urlrequest.Request(
            self.feed,
            headers={
                "User-Agent": f"wems-upgrade/{self.current}",
                "Accept": "application/vnd.github+json",
            },
        )
        log.debug("update check: asking %s", self.feed)
        with urlrequest.urlopen(request, timeout=self.timeout) as response:
            body = response.read(MAX_FEED_BYTES + 1)
        if len(body) > MAX_FEED_BYTES:
            log.info("update check: the feed is larger than %d bytes", MAX_FEED_BYTES)
            return None
        return newest(json.loads(body), self.current)

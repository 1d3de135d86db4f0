"""The update check (upgrader/updates.py) against a local releases feed: never the network."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from upgrader import updates
from upgrader.updates import FEED_VARIABLE, NewerRelease, UpdateCheck

PAGE = "https://example.invalid/wems-upgrade/releases/tag/v{}"

# The suite runs under Wine on a loaded machine too: a timing bound is the timeout plus this.
MARGIN = 5.0


def release(tag: str, **extra: object) -> dict[str, object]:
    return {"tag_name": tag, "html_url": PAGE.format(tag.lstrip("v")), "draft": False, "prerelease": False, **extra}


#: path -> (status, body) served by the local feed.
ROUTES: dict[str, tuple[int, bytes]] = {
    "/newer": (200, json.dumps(release("v0.2.0")).encode()),
    "/newer-no-v": (200, json.dumps(release("1.0.0")).encode()),
    "/same": (200, json.dumps(release("v0.1.0")).encode()),
    "/older": (200, json.dumps(release("v0.0.9")).encode()),
    "/prerelease": (200, json.dumps(release("v0.3.0", prerelease=True)).encode()),
    "/rc-tag": (200, json.dumps(release("v0.3.0rc1")).encode()),
    "/draft": (200, json.dumps(release("v0.3.0", draft=True)).encode()),
    "/unparsable": (200, json.dumps(release("latest-and-greatest")).encode()),
    "/bad-url": (200, json.dumps({**release("v0.2.0"), "html_url": "https://x.invalid/\x1b[2Jnew"}).encode()),
    "/no-url": (200, json.dumps({"tag_name": "v0.2.0"}).encode()),
    "/list": (200, json.dumps([release("v0.4.0", prerelease=True), release("v0.2.0"), release("v0.3.0")]).encode()),
    "/garbage": (200, b"<html>not json</html>"),
    "/not-an-object": (200, b'"v9.9.9"'),
    "/error": (500, b'{"message": "boom"}'),
    "/missing": (404, b'{"message": "Not Found"}'),
}


class Feed(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []  # noqa: RUF012 - the headers of every request, for the tests
    slow = threading.Event()  # set: /slow answers (the test's end)

    def do_GET(self) -> None:
        type(self).seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        if self.path == "/slow":
            type(self).slow.wait(30)
            status, body = ROUTES["/newer"]
        else:
            status, body = ROUTES.get(self.path, (404, b"{}"))
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (the slow route)
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    Feed.slow.set()
    httpd.shutdown()
    httpd.server_close()


def check(url: str, current: str = "0.1.0", timeout: float = 2.0) -> tuple[NewerRelease | None, float]:
    started = time.monotonic()
    found = UpdateCheck(current, feed=url, timeout=timeout).start().result()
    return found, time.monotonic() - started


def test_a_newer_release_is_named_with_its_page(server):
    found, took = check(server + "/newer")
    assert found == NewerRelease("0.2.0", PAGE.format("0.2.0"))
    assert took < 2.0 + MARGIN


def test_a_tag_without_v(server):
    assert check(server + "/newer-no-v")[0] == NewerRelease("1.0.0", PAGE.format("1.0.0"))


@pytest.mark.parametrize(
    "route",
    ["/same", "/older", "/prerelease", "/rc-tag", "/draft", "/unparsable", "/bad-url", "/no-url"],
)
def test_nothing_newer(server, route):
    assert check(server + route)[0] is None


def test_a_list_of_releases_gives_the_newest_final_one(server):
    assert check(server + "/list")[0] == NewerRelease("0.3.0", PAGE.format("0.3.0"))


def test_versions_compare_as_versions_not_text(server):
    assert check(server + "/newer", current="0.10.0")[0] is None
    assert check(server + "/newer", current="0.1.9")[0] == NewerRelease("0.2.0", PAGE.format("0.2.0"))


def test_a_development_version_sees_its_final_release(server):
    assert check(server + "/newer", current="0.2.0.dev1")[0] == NewerRelease("0.2.0", PAGE.format("0.2.0"))
    assert check(server + "/newer", current="not a version")[0] is None


@pytest.mark.parametrize("route", ["/garbage", "/not-an-object", "/error", "/missing"])
def test_a_broken_feed_is_silent(server, route, caplog):
    caplog.set_level("DEBUG", logger=updates.__name__)
    found, took = check(server + route)
    assert found is None
    assert took < 2.0 + MARGIN
    assert all(record.levelname in ("DEBUG", "INFO") for record in caplog.records)


def test_only_the_version_goes_out(server):
    Feed.seen.clear()
    check(server + "/newer", current="0.1.0")
    (request,) = Feed.seen
    assert request["path"] == "/newer"
    assert request["user-agent"] == "wems-upgrade/0.1.0"
    assert set(request) <= {"path", "user-agent", "accept", "accept-encoding", "host", "connection"}


def test_a_slow_feed_gives_up_at_the_timeout(server):
    found, took = check(server + "/slow", timeout=0.5)
    assert found is None
    assert took < 0.5 + MARGIN


def test_result_waits_only_what_is_left_of_the_timeout(server):
    pending = UpdateCheck("0.1.0", feed=server + "/slow", timeout=1.0).start()
    time.sleep(1.5)
    started = time.monotonic()
    assert pending.result() is None
    assert time.monotonic() - started < MARGIN


def test_the_thread_never_keeps_the_program_alive(server):
    pending = UpdateCheck("0.1.0", feed=server + "/slow", timeout=0.5).start()
    threads = [t for t in threading.enumerate() if t.name == "wems-upgrade update check"]
    assert threads and all(t.daemon for t in threads)
    assert pending.result() is None


def test_connection_refused():
    with socket.socket() as sock:  # a port nothing listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        found, took = check(f"http://127.0.0.1:{port}/releases")
    assert found is None
    assert took < 2.0 + MARGIN


def test_only_http_feeds_are_asked(tmp_path):
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps(release("v9.0.0")), encoding="utf-8")
    assert check(feed.as_uri())[0] is None
    assert check("not a url")[0] is None


def test_result_before_start_is_none():
    assert UpdateCheck("0.1.0", feed="http://127.0.0.1:9/").result() is None


def test_the_feed_comes_from_the_environment_then_github(monkeypatch):
    monkeypatch.setenv(FEED_VARIABLE, "http://127.0.0.1:9/elsewhere")
    assert UpdateCheck("0.1.0").feed == "http://127.0.0.1:9/elsewhere"
    assert UpdateCheck("0.1.0", feed="http://127.0.0.1:9/given").feed == "http://127.0.0.1:9/given"
    monkeypatch.delenv(FEED_VARIABLE)
    assert UpdateCheck("0.1.0").feed == "https://api.github.com/repos/wareflow/wems-upgrade/releases/latest"
    assert updates.DEFAULT_FEED.startswith("https://api.github.com/repos/")


def test_the_suite_never_reaches_the_network():
    # conftest.py points every run at a port where nothing listens.
    found, took = check(updates.feed_url())
    assert found is None
    assert took < 2.0 + MARGIN


def test_no_ssl_means_no_check(monkeypatch, caplog):
    import builtins

    real_import = builtins.__import__

    def without_ssl(name, *args, **kwargs):
        if name == "ssl":
            raise ImportError("No module named 'ssl'")
        return real_import(name, *args, **kwargs)

    caplog.set_level("INFO", logger=updates.__name__)
    monkeypatch.setattr(builtins, "__import__", without_ssl)
    found, took = check("https://127.0.0.1:9/releases/latest")
    monkeypatch.undo()
    assert found is None
    assert took < 2.0 + MARGIN
    assert "update check skipped: No module named 'ssl'" in caplog.messages

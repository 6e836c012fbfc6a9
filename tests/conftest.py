"""Shared fixtures: real local servers and an isolated git, for the tests that talk to them."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from gitwork import origin_and_clone


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite fixtures/*.expected.py from the current rules (review the diff!)",
    )


@dataclass
class Hook:
    url: str
    status: int = 200
    received: list[dict] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


@pytest.fixture
def webhook():
    """Start an HTTP server answering `status`: `webhook(status=200, path="/hook")`."""
    servers = []

    def start(status: int = 200, path: str = "/hook") -> Hook:
        hook = Hook(url="", status=status)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.paths.append(self.path)
                hook.received.append(json.loads(body))
                self.send_response(hook.status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if hook.status == 200 else b"no_service")

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        hook.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
        return hook

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def isolated_git(tmp_path, monkeypatch):
    """No global or system git config and no inherited git variables: tests see only their repo."""
    for name in list(os.environ):
        if name.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_")) or name in (
            "GIT_DIR",
            "GIT_INDEX_FILE",
            "GIT_WORK_TREE",
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")


@pytest.fixture
def origin(tmp_path):
    """A bare repository standing in for GitHub (see `work`)."""
    return origin_and_clone(tmp_path)[0]


@pytest.fixture
def work(origin):
    """The developer's clone of `origin`: main holds cnn_digits.py and a README, pushed."""
    return origin.parent / "work"

"""A small stand-in for the Hugging Face Hub's HTTP API, served on localhost, so that the app's Hub path runs
through the real client (huggingface_hub's repo_info, tree listing, HEAD and GET of `resolve/`) with no network.

It answers only what `snapshot_download` and `hf_hub_download` ask, the way the Hub answers it: JSON for the
API, an ETag and X-Repo-Commit for a file, and the Hub's `X-Error-Code` header for typed errors (GatedRepo,
RepoNotFound, RevisionNotFound), from which the client builds its own exception classes."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, repos: dict[str, Path], errors: dict[str, tuple[int, str]] | None = None,
                 seconds_per_mb: float = 0.0):
        self.repos, self.errors, self.seconds_per_mb = repos, errors or {}, seconds_per_mb
        self.log: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                hub._answer(self, head=True)

            def do_GET(self):
                hub._answer(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fetched(self) -> list[str]:
        """The files whose bytes were sent (GET of resolve/)."""
        return [p.split("/resolve/", 1)[1].split("/", 1)[1] for m, p in self.log if m == "GET" and "/resolve/" in p]

    def _send(self, h, code: int, body: bytes, headers: dict[str, str], head: bool) -> None:
        h.send_response(code)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if head:
            return
        step = 1 << 20
        for i in range(0, len(body), step):
            h.wfile.write(body[i:i + step])
            if self.seconds_per_mb:
                h.wfile.flush()
                time.sleep(self.seconds_per_mb)

    def _answer(self, h, head: bool) -> None:
        path = unquote(urlparse(h.path).path)
        self.log.append((h.command, path))
        parts = path.strip("/").split("/")
        if path == "/":                                  # the app's reachability check
            return self._send(h, 200, b"", {}, head)
        if parts[:2] == ["api", "models"]:
            rest = parts[2:]
            i = next(j for j, x in enumerate(rest) if x in ("revision", "tree"))
            repo, kind, tail = "/".join(rest[:i]), rest[i], rest[i + 1:]
        elif "resolve" in parts:
            i = parts.index("resolve")
            repo, kind, tail = "/".join(parts[:i]), "resolve", parts[i + 1:]
        else:                                            # nothing else of the Hub's is asked for a download
            return self._send(h, 404, b"", {}, head)
        if repo in self.errors:
            code, err = self.errors[repo]
            body = json.dumps({"error": err}).encode()
            return self._send(h, code, body, {"X-Error-Code": err, "X-Error-Message": err,
                                              "Content-Type": "application/json"} if err else {}, head)
        if repo not in self.repos:
            return self._send(h, 404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"}, head)
        folder = self.repos[repo]
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        if kind == "revision":
            body = {"id": repo, "sha": COMMIT, "siblings": [{"rfilename": str(p.relative_to(folder))} for p in files]}
            return self._send(h, 200, json.dumps(body).encode(), {"Content-Type": "application/json"}, head)
        if kind == "tree":
            body = [{"type": "file", "oid": hashlib.sha1(p.read_bytes()).hexdigest(), "size": p.stat().st_size,
                     "path": str(p.relative_to(folder))} for p in files]
            return self._send(h, 200, json.dumps(body).encode(), {"Content-Type": "application/json"}, head)
        file = folder / "/".join(tail[1:])
        if not file.is_file():
            return self._send(h, 404, b"", {"X-Error-Code": "EntryNotFound"}, head)
        data = file.read_bytes()
        return self._send(h, 200, data, {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha1(data).hexdigest()}"',
                                         "Content-Type": "application/octet-stream"}, head)

"""A small local Hugging Face Hub for download tests (127.0.0.1, a thread, port 0).

It serves the URL layout huggingface_hub 2.x requests:

* ``HEAD/GET /{repo}/resolve/{revision}/{filename}`` with ``X-Repo-Commit``, ``ETag`` and,
  for LFS-sized files, ``X-Linked-Etag`` (the sha256) and ``X-Linked-Size``; ``Range``
  requests answer 206 with ``Content-Range``; errors carry ``X-Error-Code`` (RepoNotFound,
  EntryNotFound, GatedRepo) as the real Hub does;
* ``GET /api/models/{repo}[/revision/{rev}]`` with ``siblings``;
* the same for dataset repos under ``/datasets/{repo}/resolve/…`` and ``/api/datasets/{repo}``
  (a repo added with ``repo_type="dataset"`` is served only there, as on the real Hub).

Behaviours per file make the failure tests real: ``drop_after`` (send the full
Content-Length, write N bytes, close the connection), ``stall_after`` (write N bytes, then
hang), ``corrupt`` (advertise one sha256, serve other bytes).
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LFS_MIN = 1024  # files at least this big are served as LFS files (sha256 ETag)


@dataclass
class FakeFile:
    data: bytes
    drop_after: int | None = None  # close the connection after this many body bytes…
    drops: int = 0  # …for this many GET requests
    stall_after: int | None = None  # write this many bytes, then hang until the server stops
    fail_after_drop: int = 0  # after a drop, answer this many GETs with 503 (the network stays down)
    corrupt: bool = False  # serve different bytes than the advertised hash

    @property
    def lfs(self) -> bool:
        return len(self.data) >= LFS_MIN

    @property
    def etag(self) -> str:
        if self.lfs:
            return hashlib.sha256(self.data).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()

    def body(self) -> bytes:
        if self.corrupt:
            return bytes([self.data[0] ^ 0xFF]) + self.data[1:]
        return self.data


@dataclass
class FakeRepo:
    files: dict[str, FakeFile]
    commit: str = "a" * 40
    gated: bool = False
    token: str | None = None  # the token that unlocks a gated repo
    repo_type: str = "model"  # "model" | "dataset"


@dataclass
class FakeHub:
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_HEAD(self):
                hub._handle(self, head=True)

            def do_GET(self):
                hub._handle(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "FakeHub":
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def add(self, repo_id: str, files: dict[str, bytes | FakeFile], **kw) -> FakeRepo:
        repo = FakeRepo(files={k: v if isinstance(v, FakeFile) else FakeFile(v) for k, v in files.items()}, **kw)
        self.repos[repo_id] = repo
        return repo

    def gets(self, filename: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == "GET" and r["path"].endswith("/" + filename)]

    # -- request handling ------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        auth = h.headers.get("Authorization")
        self.requests.append({"method": "HEAD" if head else "GET", "path": h.path, "range": h.headers.get("Range"),
                              "auth": auth})
        path = h.path.split("?")[0]
        m = re.match(r"^/api/(models|datasets)/([^/]+/[^/]+)(?:/revision/([^/]+))?$", path)
        if m:
            return self._api(h, m.group(2), m.group(1)[:-1])
        m = re.match(r"^/(datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if not m:
            return self._error(h, 404, None, "Not found", head)
        prefix, repo_id, _rev, filename = m.groups()
        repo = self.repos.get(repo_id)
        if repo is None or repo.repo_type != ("dataset" if prefix else "model"):
            return self._error(h, 404, "RepoNotFound", "Repository not found", head)
        if repo.gated and auth != f"Bearer {repo.token}":
            return self._error(h, 401, "GatedRepo", f"Access to model {repo_id} is restricted. You must have access "
                               "to it and be authenticated to access it. Please log in.", head)
        f = repo.files.get(filename)
        if f is None:
            return self._error(h, 404, "EntryNotFound", "Entry not found", head, commit=repo.commit)
        self._file(h, repo, f, head)

    def _api(self, h, repo_id: str, repo_type: str = "model") -> None:
        repo = self.repos.get(repo_id)
        if repo is None or repo.repo_type != repo_type:
            return self._error(h, 404, "RepoNotFound", "Repository not found", False)
        body = json.dumps({"id": repo_id, "modelId": repo_id, "sha": repo.commit, "private": False,
                           "gated": "manual" if repo.gated else False,
                           "siblings": [{"rfilename": n} for n in repo.files]}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _error(self, h, status: int, code: str | None, message: str, head: bool, commit: str | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        h.send_response(status)
        if code:
            h.send_header("X-Error-Code", code)
        h.send_header("X-Error-Message", message)
        if commit:
            h.send_header("X-Repo-Commit", commit)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)

    def _file(self, h, repo: FakeRepo, f: FakeFile, head: bool) -> None:
        if not head and f.fail_after_drop and f.drop_after is not None and f.drops == 0:
            f.fail_after_drop -= 1
            return self._error(h, 503, None, "Service unavailable", head)
        data = f.body()
        size = len(data)
        start = 0
        rng = h.headers.get("Range")
        if rng and not head:
            m = re.match(r"bytes=(\d+)-", rng)
            start = int(m.group(1)) if m else 0
        status = 206 if start else 200
        h.send_response(status)
        h.send_header("X-Repo-Commit", repo.commit)
        h.send_header("ETag", f'"{f.etag}"')
        if f.lfs:
            h.send_header("X-Linked-Etag", f'"{f.etag}"')
            h.send_header("X-Linked-Size", str(len(f.data)))
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(size - start))
        if start:
            h.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        h.end_headers()
        if head:
            return
        body = data[start:]
        if f.stall_after is not None:
            h.wfile.write(body[: f.stall_after])
            h.wfile.flush()
            while not self._stop.wait(0.1):
                pass
            h.close_connection = True
            return
        if f.drop_after is not None and f.drops > 0:
            f.drops -= 1
            h.wfile.write(body[: f.drop_after])
            h.wfile.flush()
            h.close_connection = True
            return
        h.wfile.write(body)


def write_tiny_gguf(path: Path, *, extra_floats: int = 0, name: str = "tiny") -> Path:
    """A small valid GGUF (llama metadata, a few f32 tensors) written with the gguf package.

    ``extra_floats`` adds a padding tensor to make the file as big as a test needs.
    """
    import numpy as np
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), "llama")
    w.add_name(name)
    w.add_context_length(256)
    w.add_embedding_length(16)
    w.add_block_count(1)
    w.add_feed_forward_length(32)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    rng = np.random.default_rng(0)
    w.add_tensor("token_embd.weight", rng.standard_normal((64, 16), dtype=np.float32))
    w.add_tensor("blk.0.attn_q.weight", rng.standard_normal((16, 16), dtype=np.float32))
    w.add_tensor("blk.0.ffn_gate.weight", rng.standard_normal((32, 16), dtype=np.float32))
    if extra_floats:
        w.add_tensor("blk.0.ffn_down.weight", rng.standard_normal((extra_floats // 16, 16), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return False

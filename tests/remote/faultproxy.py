"""A small HTTP proxy on 127.0.0.1 that passes requests to a real server, or fails them on purpose.

Each request takes the next scripted fault, if any: answer with a status (and headers) without
forwarding, hold the request for some seconds before forwarding (a slow server), or forward
and cut the streamed answer after N bytes (a connection lost mid-stream). Requests without a
fault are forwarded unchanged, streaming included. Every request's path is recorded.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


@dataclass
class Fault:
    status: int | None = None  # answer this status instead of forwarding
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # wait before forwarding (or answering)
    cut_after: int | None = None  # forward, then close the connection after this many body bytes


class FaultProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.faults: list[Fault] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self._handle(b"")

            def do_POST(self) -> None:
                self._handle(self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def _handle(self, body: bytes) -> None:
                with proxy._lock:
                    proxy.paths.append(self.path)
                    fault = proxy.faults.pop(0) if proxy.faults else Fault()
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.status is not None:
                    payload = b'{"error": {"message": "injected by the fault proxy", "code": null}}'
                    self.send_response(fault.status)
                    for k, v in {"Content-Type": "application/json", **fault.headers}.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                with httpx.Client(timeout=None) as client:
                    with client.stream(self.command, proxy.upstream + self.path, content=body or None,
                                       headers=headers) as resp:
                        self.send_response(resp.status_code)
                        for k, v in resp.headers.items():
                            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                                self.send_header(k, v)
                        self.send_header("Connection", "close")
                        self.end_headers()
                        sent = 0
                        for chunk in resp.iter_raw():
                            if fault.cut_after is not None and sent + len(chunk) > fault.cut_after:
                                self.wfile.write(chunk[: max(0, fault.cut_after - sent)])
                                self.wfile.flush()
                                self.close_connection = True
                                return
                            self.wfile.write(chunk)
                            self.wfile.flush()
                            sent += len(chunk)
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

"""Start the lab's web app for the browser tests: ``python serve_app.py PORT_FILE``.

It listens on a free loopback port and writes that port number into ``PORT_FILE``.

Runs in its own process so the tests' environment (an isolated ``LLMLAB_HOME``, one thread)
is the app's, and the browser talks to a real server over loopback. The app is the server's
``create_app(core=settings)`` when that exists, else a bare FastAPI app with the UI mounted.
With ``LLMLAB_TEST_SCRIPTED_TRAINER=STEPS`` fine-tuning runs a scripted trainer (a loss point
every 50 ms, honouring stop requests) instead of real training, so the Fine-tuning screen's
live chart and stop button are tested in seconds.
"""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import uvicorn


def scripted_trainer(steps: int):
    """Stands in for ``llmlab.finetune.train.train`` toward its callbacks."""
    import time

    def train(config, *, settings=None, progress=True, ledger=True, echo=None, on_log=None, should_stop=None):
        from llmlab.finetune.train import TrainResult

        echo(f"data: scripted trainer, {steps} steps")
        losses, step, stopped = [], 0, False
        for step in range(1, steps + 1):
            time.sleep(0.05)
            losses.append((step, 3.0 / step ** 0.5))
            on_log({"step": step, "max_steps": steps, "epoch": step / steps, "loss": losses[-1][1], "lr": 1e-4})
            if should_stop():
                stopped = True
                break
        Path(config.out).mkdir(parents=True, exist_ok=True)
        return TrainResult(out=config.out, method=config.method, base=config.base, steps=step,
                           train_loss_first=losses[0][1], train_loss_last=losses[-1][1], eval_loss=None,
                           seconds=0.05 * step, tokens_per_s=1.0, losses=losses, stopped=stopped)

    return train


def build_app():
    from llmlab.config import load_settings
    from llmlab.webui import mount_ui

    settings = load_settings()
    try:
        from llmlab.server import create_app
    except ImportError:
        from fastapi import FastAPI

        return mount_ui(FastAPI())
    app = create_app(core=settings)  # server settings: defaults and LLMLAB_SERVER_* (loopback, no keys)
    if not any(type(r).__name__ == "Mount" and getattr(r, "path", None) in ("", "/") for r in app.routes):
        mount_ui(app)
    return app


def main(port_file: str) -> None:
    steps = os.environ.get("LLMLAB_TEST_SCRIPTED_TRAINER")
    if steps:
        import llmlab.finetune.train

        llmlab.finetune.train.train = scripted_trainer(int(steps))
    app = build_app()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    tmp = Path(port_file + ".tmp")
    tmp.write_text(str(sock.getsockname()[1]))
    tmp.rename(port_file)  # the reader never sees a half-written number
    server.run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1])

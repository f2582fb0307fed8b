"""The ``llmlab`` command: a thin group whose subcommands live one module each.

Subcommand modules are imported only when used, so ``llmlab generate`` starts fast.
"""
from __future__ import annotations

import importlib
import logging

import click

from .. import __version__

# command name -> "module:attribute"; each module is a thin layer over a capability
COMMANDS: dict[str, str] = {
    "generate": "llmlab.cli.generate:generate",
    "chat": "llmlab.cli.chat:chat",
    "models": "llmlab.cli.models:models",
    "logs": "llmlab.cli.logs:logs",
    "usage": "llmlab.cli.logs:usage",
    "tokenize": "llmlab.cli.tokenize:tokenize",
    "prompt": "llmlab.cli.prompt:prompt",
    "task": "llmlab.cli.task:task",
    "eval": "llmlab.cli.eval:eval_group",
    "rag": "llmlab.cli.rag:rag",
    "data": "llmlab.cli.data:data",
    "datasets": "llmlab.cli.datasets:datasets",
    "finetune": "llmlab.cli.finetune:finetune",
    "serve": "llmlab.cli.serve:serve",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(name for name in COMMANDS if self._load(name) is not None)

    def get_command(self, ctx, name):
        return self._load(name)

    @staticmethod
    def _load(name: str):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:  # that command is not part of this version yet
                return None
            raise
        return getattr(mod, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llmlab")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
def cli(verbose: int) -> None:
    """LLM 실습실 — an offline-first, Korean-first LLM lab."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main() -> None:
    cli(prog_name="llmlab")


if __name__ == "__main__":  # pragma: no cover
    main()

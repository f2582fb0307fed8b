"""Datasets: the bundled course sets and pinned public Korean sets pulled from the Hub.

``list_datasets()`` / ``describe(name)`` show licence, source and size without downloading;
``path(name)`` is the folder the rest of the lab reads; ``pull(name)`` downloads, verifies and
converts a catalog set; ``remove(name)`` deletes a pulled one.
"""
from __future__ import annotations

from .catalog import DatasetEntry, find, load_catalog
from .store import DatasetInfo, bundled_root, describe, file, list_datasets, path, remove


def pull(name: str, **kwargs):
    """Download, verify and convert a catalog dataset (see :func:`llmlab.datasets.pulling.pull`)."""
    from .pulling import pull as _pull

    return _pull(name, **kwargs)


__all__ = ["DatasetEntry", "DatasetInfo", "bundled_root", "describe", "file", "find", "list_datasets",
           "load_catalog", "path", "pull", "remove"]

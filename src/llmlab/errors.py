"""The one error root of llmlab and its subclasses.

Every error a user can cause derives from :class:`LLMLabError`; its message says what
went wrong and what to do next. The CLI prints it and exits 1; the server maps it to an
OpenAI-style JSON error in one place.
"""
from __future__ import annotations


class LLMLabError(Exception):
    """Root of every llmlab error."""

    #: a short machine-readable code, used by the server's error mapping
    code = "llmlab_error"


class ConfigError(LLMLabError):
    code = "config_error"


class RegistryError(LLMLabError, KeyError):
    """An unknown or duplicate name in a registry."""

    code = "registry_error"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingDependencyError(LLMLabError, ImportError):
    """An optional dependency is not installed; the message names the install command."""

    code = "missing_dependency"

    def __init__(self, package: str, extra: str | None = None, purpose: str = ""):
        cmd = f'pip install "llmlab[{extra}]"' if extra else f"pip install {package}"
        what = f" for {purpose}" if purpose else ""
        super().__init__(f"{package} is needed{what} but is not installed. Install it with: {cmd}")
        self.package = package


class ModelNotFoundError(LLMLabError):
    code = "model_not_found"


class DatasetNotFoundError(LLMLabError):
    code = "dataset_not_found"


class BackendError(LLMLabError):
    """A model runtime failed (load, decode, remote API)."""

    code = "backend_error"


class UnsupportedParameterError(LLMLabError):
    """A backend cannot honour a generation parameter (only remote APIs may refuse)."""

    code = "unsupported_parameter"


class ContextOverflowError(LLMLabError):
    """The prompt does not fit the model's context window."""

    code = "context_length_exceeded"


class InvalidParameterError(LLMLabError, ValueError):
    code = "invalid_parameter"


class InputFileError(LLMLabError):
    """A malformed input file: names the file, line (or field) and the problem."""

    code = "invalid_input_file"

    def __init__(self, path, problem: str, line: int | None = None, field: str | None = None):
        where = str(path)
        if line is not None:
            where += f":{line}"
        if field:
            where += f" (field {field!r})"
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.field, self.problem = str(path), line, field, problem


class LedgerError(LLMLabError):
    code = "ledger_error"


class DiskFullError(LLMLabError):
    """A write ran out of disk space; the message names the path and how to go on once space is freed."""

    code = "disk_full"


class LedgerDiskFullError(DiskFullError, LedgerError):
    """The run ledger could not be written because the disk is full (nothing in it is half-written)."""


class BusyError(LLMLabError):
    """Too many requests are waiting; try again after ``retry_after_s`` seconds."""

    code = "server_busy"

    def __init__(self, message: str, retry_after_s: float = 1.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class QueueTimeoutError(BusyError):
    """A request waited in a model's queue longer than its timeout (the server answers 503)."""

    code = "queue_timeout"

"""Information extraction into a user-given JSON schema, validated (and constrained on llama.cpp)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputFileError
from ..prompts.run import run_template
from ..prompts.template import OutputFormat, PromptTemplate
from .common import pick_template
from .result import TaskResult


def load_schema(path: str | Path) -> dict[str, Any]:
    """A JSON schema file, checked to be a valid schema (errors name the file)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(p, "file not found") from None
    except json.JSONDecodeError as e:
        raise InputFileError(p, f"invalid JSON: {e.msg} (column {e.colno})", line=e.lineno) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputFileError(p, f"cannot read: {e}") from None
    try:
        OutputFormat.model_validate({"schema": data})
    except Exception as e:  # pydantic wraps the schema error
        msg = str(e).split("\n")[1:3]
        raise InputFileError(p, " ".join(m.strip() for m in msg) or str(e)) from None
    return data


def extract(model: Any, text: str, schema: dict[str, Any], *, template: PromptTemplate | str | None = None,
            experiment: str | None = None, **params: Any) -> TaskResult:
    """Extract a JSON object following ``schema`` from ``text``; ``data`` is the parsed object."""
    tpl = pick_template(template, "extract", ("text",))
    tpl = tpl.model_copy(update={"output": OutputFormat.model_validate({"schema": schema})})
    r = run_template(model, tpl, {"text": text}, experiment=experiment, **params)
    s = r.structured
    assert s is not None
    return TaskResult("extract", model.name, r.text.strip(), data=s.data,
                      info={"valid": s.valid, "errors": s.errors, "constrained": s.constrained},
                      completions=[r.completion])

"""Prompt templates: a YAML file with a system prompt, a Jinja2 user template, declared
variables, few-shot examples, default generation parameters and an optional JSON schema.

Rendering is strict: a variable the template uses but does not declare is an error when
the file is loaded, and a missing or unknown variable is an error when it is rendered —
each error names the variable (and, for files, the file, line and field).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import InputFileError, LLMLabError
from ..types import GenerationParams, Message

#: variables every template may use without declaring them
RESERVED = ("output_schema",)

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


class TemplateError(LLMLabError):
    """A template cannot be rendered with the given variables."""

    code = "template_error"


class Variable(BaseModel):
    """A declared template variable; one without a default is required."""

    model_config = ConfigDict(extra="forbid")
    description: str = ""
    default: Any = None
    required: bool | None = None

    @property
    def is_required(self) -> bool:
        return self.required if self.required is not None else self.default is None


class Example(BaseModel):
    """A few-shot example: variables for the user template and the answer to imitate."""

    model_config = ConfigDict(extra="forbid")
    input: dict[str, Any]
    output: str | dict[str, Any] | list[Any]

    def output_text(self) -> str:
        if isinstance(self.output, str):
            return self.output
        return json.dumps(self.output, ensure_ascii=False)


class OutputFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_: dict[str, Any] = Field(alias="schema")

    @field_validator("schema_")
    @classmethod
    def _check_schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(v)
        except SchemaError as e:
            raise ValueError(f"not a valid JSON schema: {e.message}") from None
        return v


class Sample(BaseModel):
    """A documented example input for the pattern (shown in the docs and ``prompt show``)."""

    model_config = ConfigDict(extra="forbid")
    lang: str = "en"
    vars: dict[str, Any]
    note: str = ""


class PromptTemplate(BaseModel):
    """A validated prompt template. Build with :func:`load_template` or :meth:`from_dict`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    version: int | str = 1
    description: str = ""
    system: str | None = None
    template: str
    variables: dict[str, Variable] = Field(default_factory=dict)
    examples: list[Example] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    output: OutputFormat | None = None
    samples: list[Sample] = Field(default_factory=list)
    source: str | None = Field(default=None, exclude=True)  # the file it came from

    @field_validator("variables", mode="before")
    @classmethod
    def _vars_shorthand(cls, v: Any) -> Any:
        # `variables: [text, lang]` is shorthand for required variables without descriptions
        if isinstance(v, list):
            return {str(name): {} for name in v}
        if isinstance(v, dict):
            return {k: ({} if spec is None else {"description": spec} if isinstance(spec, str) else spec)
                    for k, spec in v.items()}
        return v

    @field_validator("params")
    @classmethod
    def _check_params(cls, v: dict[str, Any]) -> dict[str, Any]:
        GenerationParams.from_kwargs(**v)  # unknown names / bad values raise with the valid list
        return v

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, source: str | Path = "<template>") -> "PromptTemplate":
        """Validate ``data`` (parsed YAML) into a template; errors name the source and field."""
        if not isinstance(data, dict):
            raise InputFileError(source, "a template must be a mapping with at least 'name' and 'template'")
        try:
            tpl = cls.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or None
            msg = err["msg"].removeprefix("Value error, ")
            raise InputFileError(source, msg, line=_line_of(source, err["loc"]), field=field) from None
        except LLMLabError as e:  # e.g. an unknown generation parameter
            raise InputFileError(source, str(e), line=_line_of(source, ("params",)), field="params") from None
        tpl.source = str(source)
        tpl._check_jinja(source)
        return tpl

    def _check_jinja(self, source: str | Path) -> None:
        declared = set(self.variables) | set(RESERVED)
        for fname in ("system", "template"):
            text = getattr(self, fname)
            if text is None:
                continue
            try:
                ast = _ENV.parse(text)
            except TemplateSyntaxError as e:
                raise InputFileError(source, f"Jinja2 syntax error: {e.message} (line {e.lineno} of the {fname})",
                                     line=_line_of(source, (fname,)), field=fname) from None
            undeclared = sorted(meta.find_undeclared_variables(ast) - declared)
            if undeclared:
                raise InputFileError(
                    source, f"uses undeclared variable(s) {', '.join(undeclared)}; declare them under 'variables'",
                    line=_line_of(source, (fname,)), field=fname)
        for i, ex in enumerate(self.examples):
            try:
                self._check_vars(ex.input)
            except TemplateError as e:
                raise InputFileError(source, str(e), line=_line_of(source, ("examples",)), field=f"examples.{i}.input") from None

    # -- rendering -------------------------------------------------------------------------
    @property
    def schema(self) -> dict[str, Any] | None:
        """The JSON schema the output must follow, or None."""
        return self.output.schema_ if self.output else None

    def _check_vars(self, given: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(given) - set(self.variables))
        if unknown:
            valid = ", ".join(sorted(self.variables)) or "(none)"
            raise TemplateError(f"template {self.name!r}: unknown variable(s) {', '.join(unknown)}; declared: {valid}")
        values: dict[str, Any] = {}
        missing = []
        for name, spec in self.variables.items():
            if name in given and given[name] is not None:
                values[name] = given[name]
            elif spec.default is not None:
                values[name] = spec.default
            elif spec.is_required:
                missing.append(name)
            else:
                values[name] = ""
        if missing:
            raise TemplateError(f"template {self.name!r}: missing variable(s) {', '.join(missing)} "
                                f"(pass them with --var NAME=VALUE)")
        return values

    def _render(self, text: str, values: dict[str, Any]) -> str:
        ctx = dict(values)
        if self.schema is not None:
            ctx["output_schema"] = json.dumps(self.schema, ensure_ascii=False)
        try:
            return _ENV.from_string(text).render(**ctx).strip()
        except UndefinedError as e:
            raise TemplateError(f"template {self.name!r}: {e.message}") from None

    def render(self, variables: dict[str, Any] | None = None) -> str:
        """The user message for ``variables`` (missing or unknown names are errors)."""
        return self._render(self.template, self._check_vars(dict(variables or {})))

    def messages(self, variables: dict[str, Any] | None = None) -> list[Message]:
        """The whole conversation: system prompt, few-shot turns, then the user message."""
        values = self._check_vars(dict(variables or {}))
        msgs: list[Message] = []
        if self.system is not None:
            msgs.append(Message("system", self._render(self.system, values)))
        for ex in self.examples:
            msgs.append(Message("user", self._render(self.template, self._check_vars(ex.input))))
            msgs.append(Message("assistant", ex.output_text()))
        msgs.append(Message("user", self._render(self.template, values)))
        return msgs

    def generation_params(self, **overrides: Any) -> dict[str, Any]:
        """The template's default parameters with ``overrides`` (None values ignored) on top."""
        merged = dict(self.params)
        merged.update({k: v for k, v in overrides.items() if v is not None})
        return merged

    @property
    def fingerprint(self) -> str:
        """A short hash of everything that changes what the template produces."""
        data = self.model_dump(mode="json", by_alias=True, exclude={"description", "samples", "source"})
        return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"source"})


def inline_template(prompt: str, name: str = "inline", system: str | None = None,
                    params: dict[str, Any] | None = None, source: str = "<inline>") -> PromptTemplate:
    """A template from a bare Jinja2 prompt; its variables are the names it uses."""
    try:
        used = set()
        for text in (prompt, system):
            if text:
                used |= meta.find_undeclared_variables(_ENV.parse(text))
    except TemplateSyntaxError as e:
        raise InputFileError(source, f"Jinja2 syntax error: {e.message}", field="prompt") from None
    data = {"name": name, "template": prompt, "variables": sorted(used - set(RESERVED)), "params": params or {}}
    if system:
        data["system"] = system
    return PromptTemplate.from_dict(data, source)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; syntax errors name the file and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(p, "file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputFileError(p, f"cannot read: {e}") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise InputFileError(p, f"YAML syntax error: {e.problem or e.context}",
                             line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as e:
        raise InputFileError(p, f"YAML error: {e}") from None


def load_template_file(path: str | Path) -> PromptTemplate:
    return PromptTemplate.from_dict(read_yaml(path), Path(path))


def _line_of(source: str | Path, loc: tuple) -> int | None:
    """Best effort: the line of a top-level key in a YAML file (for error messages)."""
    if not loc or not isinstance(loc[0], str):
        return None
    p = Path(str(source))
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    key = "schema" if loc[0] == "output" and len(loc) > 1 else loc[0]
    for i, line in enumerate(lines, 1):
        if line.lstrip().startswith(f"{key}:") and (key != loc[0] or not line[:1].isspace()):
            return i
    return None

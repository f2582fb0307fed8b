"""Controls for every generation parameter, generated from :class:`~llmlab.types.GenerationParams`.

Each control's kind, range, step and two-language explanation come from the parameter's
:class:`~llmlab.types.ParamSpec` (the same source as the CLI's flags and the server's request
models). The controls start at the chosen model's recommended defaults (what the CLI uses when a
flag is not given), and :func:`to_kwargs` sends only the values the user changed, so the same
prompt gets the same parameters in the UI, the CLI and the API.
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from ..errors import InvalidParameterError, LLMLabError
from ..types import GenerationParams, ParamSpec

SPECS = GenerationParams.specs()
#: the controls' order: what :func:`controls` returns and :func:`to_kwargs` reads
NAMES = tuple(SPECS)
HELP = {name: spec.help() for name, spec in SPECS.items()}

DO_SAMPLE = {"auto": None, "sample": True, "greedy": False}
#: a browser's number box holds integers exactly up to 2^53; larger ranges (seed) get a text box
_JS_SAFE = 2**53


def model_defaults(settings: Any, name: str | None) -> dict[str, Any]:
    """The generation defaults a model's card recommends (``{}`` for an unknown name; nothing loads)."""
    from ..models.spec import resolve

    try:
        return dict(resolve(name or settings.default_model, settings).defaults)
    except LLMLabError:
        return {}


def start_values(defaults: Mapping[str, Any] | None = None, max_new_tokens: int | None = None) -> list[Any]:
    """The controls' starting values in :data:`NAMES` order: the library's defaults under ``defaults``.

    ``defaults`` are the model's recommended ones (:func:`model_defaults`) — the values
    ``Model.resolve`` uses for anything a call leaves unset.
    """
    p = GenerationParams.from_kwargs(**dict(defaults or {}))
    shown = p.to_dict()
    shown["max_new_tokens"] = max_new_tokens or p.max_new_tokens or p.DEFAULT_MAX_NEW_TOKENS
    return [_shown(name, shown[name]) for name in NAMES]


def _shown(name: str, value: Any) -> Any:
    spec = SPECS[name]
    if spec.kind is bool:
        return next(k for k, v in DO_SAMPLE.items() if v is value)
    if spec.kind is list:
        return "\n".join(value or [])
    if spec.kind is dict:
        return json.dumps(value) if value else ""
    if _widget(spec) == "text":
        return "" if value is None else str(value)
    return value


def _widget(spec: ParamSpec) -> str:
    if spec.kind is bool or spec.choices:
        return "radio"
    if spec.kind in (list, dict):
        return spec.kind.__name__
    if spec.step is not None:
        return "slider"
    if spec.maximum is not None and spec.maximum > _JS_SAFE:
        return "text"
    return "number"


def controls(defaults: Mapping[str, Any] | None = None, max_new_tokens: int | None = None,
             prefix: str = "param") -> list[Any]:
    """Create the controls (inside the current Gradio layout) in :data:`NAMES` order.

    They start at :func:`start_values` (pass the model's ``defaults``). Each gets the element id
    ``{prefix}-{name}`` (what browser tests and custom CSS address).
    """
    import gradio as gr

    values = dict(zip(NAMES, start_values(defaults, max_new_tokens)))
    out = []
    for name, spec in SPECS.items():
        kw: dict[str, Any] = {"label": name, "elem_id": f"{prefix}-{name}", "info": HELP[name], "value": values[name]}
        widget = _widget(spec)
        if widget == "radio":
            out.append(gr.Radio(list(DO_SAMPLE) if spec.kind is bool else list(spec.choices), **kw))
        elif widget == "list":
            out.append(gr.Textbox(lines=2, **{**kw, "info": HELP[name] + " — one per line · 한 줄에 하나"}))
        elif widget == "dict":
            kw.pop("info")
            out.append(gr.Code(language="json", lines=3, **{**kw, "label": f"{name}  —  {HELP[name]}"}))
        elif widget == "slider":
            low = spec.step if spec.exclusive_minimum else spec.minimum
            out.append(gr.Slider(low, spec.maximum, step=spec.step, **kw))
        elif widget == "number":
            # a browser sends an emptied number box as 0: an optional control whose range starts above 0
            # (max_length) takes 0 as "unset" (see _parse) instead of letting Gradio refuse it
            low = None if _zero_means_unset(spec) else spec.minimum
            out.append(gr.Number(minimum=low, maximum=spec.maximum, precision=0 if spec.kind is int else None, **kw))
        else:
            out.append(gr.Textbox(**kw))
    return out


def _zero_means_unset(spec: ParamSpec) -> bool:
    return spec.optional and spec.minimum is not None and spec.minimum > 0


def _parse(name: str, raw: Any) -> Any:
    """One control's value as a parameter value; ``None`` when left empty (unset)."""
    spec = SPECS[name]
    if spec.kind is bool:
        return DO_SAMPLE.get(raw or "auto")
    if spec.kind is list:
        return [s for s in str(raw or "").splitlines() if s] or None
    if spec.kind is dict:
        text = str(raw or "").strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidParameterError(f"{name} is not valid JSON: {e}") from None
    if spec.choices:
        return raw or None
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if spec.kind is float:
        try:
            return float(raw)
        except ValueError:
            raise InvalidParameterError(f"{name} must be a number, got {raw!r}") from None
    try:
        number = float(raw) if not isinstance(raw, str) else int(raw.strip())
        if number != int(number):
            raise ValueError
    except (ValueError, OverflowError):
        raise InvalidParameterError(f"{name} must be a whole number, got {raw!r}") from None
    if number == 0 and _zero_means_unset(spec):
        return None  # an emptied box arrives as 0
    return int(number)


def to_kwargs(values: Sequence[Any], start: Sequence[Any] | None = None) -> dict[str, Any]:
    """The controls' values as ``GenerationParams`` keyword arguments.

    Empty controls are left out, and so is every value still equal to ``start`` (the controls'
    starting values, :func:`start_values`): the model's defaults then apply, as on the CLI.
    """
    now = {n: _parse(n, v) for n, v in zip(NAMES, values)}
    before = {n: _parse(n, v) for n, v in zip(NAMES, start)} if start is not None else {}
    out = {n: v for n, v in now.items() if v is not None and (n not in before or v != before[n])}
    base = {n: v for n, v in before.items() if v is not None}
    GenerationParams.from_kwargs(**{**base, **out})  # report a bad value or combination before a model loads
    return out

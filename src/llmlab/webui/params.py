"""Controls for every generation parameter, each with a one-line explanation in both languages.

The controls mirror :class:`~llmlab.types.GenerationParams` (same names, same defaults, the
same meaning as the CLI's flags); :func:`to_kwargs` turns their values back into the keyword
arguments ``Model.stream_chat`` validates. An empty box means "not set".
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from ..errors import InvalidParameterError
from ..types import GenerationParams
from .labels import info

#: the controls' order: what :func:`controls` returns and :func:`to_kwargs` reads
NAMES = ("max_new_tokens", "max_length", "temperature", "top_p", "top_k", "repetition_penalty",
         "no_repeat_ngram_size", "num_return_sequences", "do_sample", "seed", "stop", "logprobs", "truncate",
         "json_schema")

DO_SAMPLE = {"auto": None, "sample": True, "greedy": False}

HELP = {
    "max_new_tokens": info("새로 만들 토큰 수의 상한", "the most tokens to generate"),
    "max_length": info("프롬프트+답의 토큰 상한 (0 = 끔, max_new_tokens가 우선)",
                       "prompt + answer tokens at most (0 = off; max_new_tokens wins)"),
    "temperature": info("높을수록 다양하고 낮을수록 결정적 (0 = 가장 그럴듯한 토큰만)",
                        "higher is more varied, lower more deterministic (0 = greedy)"),
    "top_p": info("누적 확률이 p가 될 때까지의 후보만 뽑기 (1 = 끔)",
                  "sample only from the smallest set holding this much probability (1 = off)"),
    "top_k": info("가장 그럴듯한 k개 토큰 중에서만 뽑기 (0 = 끔)", "sample among the k most likely tokens (0 = off)"),
    "repetition_penalty": info("1보다 크면 이미 나온 토큰을 덜 쓰게 함 (1 = 끔)",
                               "above 1 discourages tokens already used (1 = off)"),
    "no_repeat_ngram_size": info("이 길이의 n-gram을 두 번 만들지 않음 (0 = 끔)",
                                 "never repeat an n-gram of this size (0 = off)"),
    "num_return_sequences": info("독립적으로 뽑을 답의 개수 (샘플링 필요)",
                                 "independent answers to sample (needs sampling)"),
    "do_sample": info("auto: temperature > 0이면 샘플링 · greedy: 항상 최댓값",
                      "auto: sample when temperature > 0 · greedy: always the most likely token"),
    "seed": info("같은 시드 = 같은 샘플 (비우면 무작위로 정해 기록)",
                 "same seed, same sample (empty: one is drawn and recorded)"),
    "stop": info("이 문자열이 나오면 멈춤, 한 줄에 하나 (출력에는 빠짐)",
                 "stop at any of these strings, one per line (not included in the output)"),
    "logprobs": info("토큰마다 로그 확률과 상위 k개 후보를 보여 줌 (비우면 끔)",
                     "show each token's log-probability and the k most likely alternatives (empty = off)"),
    "truncate": info("프롬프트가 문맥 창보다 길 때: error = 오류, left = 앞부분을 잘라냄",
                     "prompt longer than the context window: error, or drop the oldest tokens (left)"),
    "json_schema": info("이 JSON 스키마에 맞는 JSON만 만들게 함 (비우면 끔)",
                        "constrain the output to JSON matching this schema (empty = off)"),
}


def controls(max_new_tokens: int | None = None, prefix: str = "param") -> list[Any]:
    """Create the controls (inside the current Gradio layout) in :data:`NAMES` order.

    Each gets the element id ``{prefix}-{name}`` (what browser tests and custom CSS address).
    """
    import gradio as gr

    d = GenerationParams()
    first = max_new_tokens or d.DEFAULT_MAX_NEW_TOKENS

    def kw(name: str) -> dict[str, str]:
        return {"label": name, "elem_id": f"{prefix}-{name}", "info": HELP[name]}

    c = [
        gr.Slider(1, 4096, value=first, step=1, **kw("max_new_tokens")),
        gr.Number(value=0, precision=0, minimum=0, **kw("max_length")),
        gr.Slider(0.0, 2.0, value=d.temperature, step=0.05, **kw("temperature")),
        gr.Slider(0.01, 1.0, value=d.top_p, step=0.01, **kw("top_p")),
        gr.Slider(0, 200, value=d.top_k, step=1, **kw("top_k")),
        gr.Slider(0.5, 2.0, value=d.repetition_penalty, step=0.05, **kw("repetition_penalty")),
        gr.Slider(0, 10, value=d.no_repeat_ngram_size, step=1, **kw("no_repeat_ngram_size")),
        gr.Slider(1, 8, value=d.num_return_sequences, step=1, **kw("num_return_sequences")),
        gr.Radio(list(DO_SAMPLE), value="auto", **kw("do_sample")),
        gr.Textbox(value="", **kw("seed")),
        gr.Textbox(value="", lines=2, **kw("stop")),
        gr.Textbox(value="", **kw("logprobs")),
        gr.Radio(["error", "left"], value=d.truncate, **kw("truncate")),
        gr.Code(value="", language="json", label="json_schema  —  " + HELP["json_schema"], lines=3,
                elem_id=f"{prefix}-json_schema"),
    ]
    assert len(c) == len(NAMES)
    return c


def _whole(name: str, text: Any) -> dict[str, int]:
    """An optional whole number typed in a text box: ``{}`` when empty."""
    text = str(text if text is not None else "").strip()
    if not text:
        return {}
    try:
        return {name: int(text)}
    except ValueError:
        raise InvalidParameterError(f"{name} must be a whole number, got {text!r}") from None


def to_kwargs(values: Sequence[Any]) -> dict[str, Any]:
    """The controls' values as ``GenerationParams`` keyword arguments (unset ones left out)."""
    v = dict(zip(NAMES, values))
    out: dict[str, Any] = {
        "max_new_tokens": int(v["max_new_tokens"]),
        "temperature": float(v["temperature"]),
        "top_p": float(v["top_p"]),
        "top_k": int(v["top_k"]),
        "repetition_penalty": float(v["repetition_penalty"]),
        "no_repeat_ngram_size": int(v["no_repeat_ngram_size"]),
        "num_return_sequences": int(v["num_return_sequences"]),
        "do_sample": DO_SAMPLE.get(v["do_sample"] or "auto"),
        "truncate": v["truncate"] or "error",
    }
    if v["max_length"]:
        out["max_length"] = int(v["max_length"])
    out.update(_whole("seed", v["seed"]))
    stops = [s for s in (v["stop"] or "").splitlines() if s]
    if stops:
        out["stop"] = stops
    out.update(_whole("logprobs", v["logprobs"]))
    schema = (v["json_schema"] or "").strip()
    if schema:
        try:
            out["json_schema"] = json.loads(schema)
        except json.JSONDecodeError as e:
            raise InvalidParameterError(f"json_schema is not valid JSON: {e}") from None
    GenerationParams.from_kwargs(**out)  # report a bad combination before a model loads
    return out

"""Helpers the task presets share: template choice, variables, and the context budget."""
from __future__ import annotations

from typing import Any

from ..errors import ContextOverflowError, InvalidParameterError
from ..prompts.library import load_template
from ..prompts.template import PromptTemplate
from ..types import GenerationParams

MARGIN_TOKENS = 16  # chat-template tokens that counting may miss


def pick_template(template: PromptTemplate | str | None, default: str, needs: tuple[str, ...]) -> PromptTemplate:
    """The task's template (library default or the user's), checked to declare ``needs``."""
    tpl = template if isinstance(template, PromptTemplate) else load_template(template or default)
    missing = [v for v in needs if v not in tpl.variables]
    if missing:
        raise InvalidParameterError(
            f"template {tpl.name!r} cannot be used for this task: it must declare the variable(s) "
            f"{', '.join(missing)} (see the built-in {default!r} template)")
    return tpl


def declared(tpl: PromptTemplate, **values: Any) -> dict[str, Any]:
    """Only the values the template declares (optional extras are dropped, None means default)."""
    return {k: v for k, v in values.items() if k in tpl.variables and v is not None}


def max_new_tokens(tpl: PromptTemplate, params: dict[str, Any]) -> int:
    gp = tpl.generation_params(**params)
    return int(gp.get("max_new_tokens") or GenerationParams.DEFAULT_MAX_NEW_TOKENS)


def room_for(model: Any, tpl: PromptTemplate, variables: dict[str, Any], slot: str, params: dict[str, Any]) -> int:
    """Tokens left for ``variables[slot]`` once the rest of the prompt and the answer fit."""
    overhead = model.count_chat_tokens(tpl.messages({**variables, slot: ""}))
    room = model.context_length - overhead - max_new_tokens(tpl, params) - MARGIN_TOKENS
    if room < 32:
        raise ContextOverflowError(
            f"the context window ({model.context_length} tokens) leaves no room for the text after the "
            f"{overhead}-token prompt and {max_new_tokens(tpl, params)} new tokens; load the model with a "
            f"larger context (--context) or lower --max-new-tokens")
    return room

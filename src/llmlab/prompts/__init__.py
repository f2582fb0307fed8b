"""Prompt templates, the built-in pattern library, structured output and the experiment grid.

``load_template("few_shot")`` or ``load_template("my.yaml")`` gives a validated
:class:`PromptTemplate`; ``run_template(model, tpl, vars)`` runs it; the grid runner
(:mod:`.grid`) runs templates × models × parameters × inputs and records every cell.
"""
from .library import library, library_names, load_template
from .run import PromptResult, run_template
from .structured import StructuredOutput, parse_structured
from .template import PromptTemplate, TemplateError, inline_template

__all__ = ["PromptTemplate", "TemplateError", "inline_template", "load_template", "library", "library_names",
           "run_template", "PromptResult", "StructuredOutput", "parse_structured"]

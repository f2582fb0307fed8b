"""Task presets with Korean-aware prompts: summarize, translate, qa, classify, extract.

Each is a function taking a loaded model and returning a :class:`TaskResult`; the CLI
(``llmlab task …``) and the evaluation runners call the same functions.
"""
from .classify import classify
from .extract import extract
from .qa import answer_question
from .result import TaskResult
from .summarize import summarize
from .translate import translate

__all__ = ["summarize", "translate", "answer_question", "classify", "extract", "TaskResult"]

"""``llmlab finetune compare``: the base model and the fine-tune side by side on held-out prompts.

Both answer every prompt greedily through the transformers backend (the same runtime, so
only the weights differ); each answer is scored against the reference with chrF and
ROUGE-L over Kiwi morphemes (:mod:`llmlab.eval.metrics`). The perplexity of the reference
answers under each model (teacher-forced, answer tokens only) shows a fine-tune's effect
even where a small model's generations are poor.
"""
from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import InvalidParameterError
from . import data as data_mod
from .runcard import FILENAME, RunCard


@dataclass
class CompareItem:
    line: int
    prompt: str
    reference: str
    base: str = ""
    tuned: str = ""
    chrf_base: float = 0.0
    chrf_tuned: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CompareReport:
    folder: str
    base: str
    data: str
    n: int
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    items: list[CompareItem] = field(default_factory=list)

    def to_dict(self, items: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {"folder": self.folder, "base": self.base, "data": self.data, "n": self.n,
                             "metrics": self.metrics}
        if items:
            d["items"] = [i.to_dict() for i in self.items]
        return d


def base_of(folder: Path) -> str:
    if (folder / FILENAME).exists():
        return RunCard.load(folder).base
    from .export import adapter_base

    return adapter_base(folder)


def answer_nll(backend, formatter, example: data_mod.Example) -> tuple[float, int]:
    """Summed negative log-likelihood of the example's answer tokens, and their count."""
    import torch

    enc = formatter.encode(example)
    ids = torch.tensor([enc.input_ids], device=backend.model.device)
    labels = torch.tensor([[t if m else -100 for t, m in zip(enc.input_ids, enc.mask)]], device=ids.device)
    with torch.no_grad():
        logits = backend.model(input_ids=ids).logits[0, :-1].float()
    target = labels[0, 1:]
    keep = target != -100
    if not keep.any():
        return 0.0, 0
    nll = torch.nn.functional.cross_entropy(logits[keep], target[keep], reduction="sum")
    return float(nll), int(keep.sum())


def _run(name: str, examples: list[data_mod.Example], settings, *, max_new_tokens: int, threads: int | None,
         tick: Callable[[], None]) -> tuple[list[str], float | None]:
    from ..models.model import load_model
    from .formatting import Formatter

    options: dict[str, Any] = {}
    if threads:
        options["threads"] = threads
    model = load_model(name, backend="transformers", settings=settings, ledger=False, **options)
    try:
        formatter = Formatter(model.backend.tokenizer)
        answers, nll, count = [], 0.0, 0
        for ex in examples:
            msgs = (ex.messages or [])[:-1]
            answers.append(model.chat(msgs, max_new_tokens=max_new_tokens, temperature=0).text.strip())
            s, n = answer_nll(model.backend, formatter, ex)
            nll, count = nll + s, count + n
            tick()
        return answers, (round(math.exp(nll / count), 4) if count else None)
    finally:
        model.close()


def compare(folder: str | Path, data: str, *, limit: int | None = 20, max_new_tokens: int = 128, settings=None,
            threads: int | None = None, progress: Callable[[int, int], None] | None = None) -> CompareReport:
    """Answer the prompts of ``data`` with the base model and with the fine-tune in ``folder``; score both."""
    from ..config import load_settings
    from ..eval import metrics

    settings = settings or load_settings()
    src = Path(folder)
    base = base_of(src)
    ds = data_mod.load(data)
    ds.raise_for_errors()
    examples = [ex for ex in ds.examples if ex.is_chat][:limit]
    if not examples:
        raise InvalidParameterError(f"{data} holds no conversations to compare on (alpaca or messages format)")
    report = CompareReport(folder=str(src), base=base, data=str(data), n=len(examples))
    report.items = [CompareItem(ex.line, (ex.messages or [])[-2].content if len(ex.messages or []) > 1 else "",
                                (ex.messages or [])[-1].content) for ex in examples]
    total, done = 2 * len(examples), 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    refs = [i.reference for i in report.items]
    kiwi = importlib.util.find_spec("kiwipiepy") is not None
    for label, name in (("base", base), ("tuned", str(src))):
        answers, ppl = _run(name, examples, settings, max_new_tokens=max_new_tokens, threads=threads, tick=tick)
        for item, answer in zip(report.items, answers):
            setattr(item, label, answer)
            setattr(item, f"chrf_{label}", metrics.sentence_chrf(answer, item.reference))
        report.metrics[label] = {"chrf": metrics.chrf(answers, refs),
                                 "rougeL": metrics.rouge(answers, refs)["rougeL"] if kiwi else None,
                                 "answer_perplexity": ppl}
    return report

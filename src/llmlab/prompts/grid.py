"""The experiment grid: templates × models × parameter sets × inputs, run side by side.

A grid file (YAML) is validated into a :class:`Grid`; :func:`expand` lists its cells and
:func:`run_grid` runs them, recording each cell in the run ledger under one experiment id
(with the cell's key in ``meta``). The experiment id is derived from the grid's content,
so running the same grid again — after an interruption, say — reuses every finished cell
from the ledger and computes only the rest. ``fresh=True`` starts a new experiment.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import InputFileError, LLMLabError
from ..types import GenerationParams
from .library import load_template
from .run import constrained_params
from .scorers import Scorer, make_scorer
from .structured import parse_structured
from .template import PromptTemplate, TemplateError, inline_template, read_yaml

log = logging.getLogger(__name__)

#: input fields that are not template variables (references for scorers, ids)
INPUT_META_FIELDS = ("id", "reference", "expected", "label", "answers")
CELL_KIND = "grid"


# -- the grid file ------------------------------------------------------------------------
class ModelEntry(BaseModel):
    """A model in a grid: a name as ``--model`` takes, optional backend and load options."""

    model_config = ConfigDict(extra="forbid")
    name: str
    backend: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None

    @property
    def display(self) -> str:
        return self.label or self.name

    def key(self) -> dict[str, Any]:
        return {"name": self.name, "backend": self.backend, "options": self.options}


class GridFile(BaseModel):
    """The YAML schema of a grid file."""

    model_config = ConfigDict(extra="forbid")
    name: str = "grid"
    description: str = ""
    seed: int | None = 0
    templates: list[str | dict[str, Any]] = Field(min_length=1)
    models: list[str | ModelEntry] = Field(default_factory=list)
    params: dict[str, Any] | list[dict[str, Any]] = Field(default_factory=dict)
    inputs: list[dict[str, Any] | str] | dict[str, str] = Field(min_length=1)
    scorers: list[str | dict[str, Any]] = Field(default_factory=list)

    @field_validator("inputs")
    @classmethod
    def _inputs_file(cls, v: Any) -> Any:
        if isinstance(v, dict) and set(v) != {"file"}:
            raise ValueError("inputs must be a list, or {file: inputs.jsonl}")
        return v


@dataclass
class Grid:
    """A validated grid: everything resolved, ready to expand."""

    name: str
    templates: list[PromptTemplate]
    models: list[ModelEntry]
    param_sets: list[dict[str, Any]]
    inputs: list[dict[str, Any]]
    scorers: list[tuple[str, Scorer]] = field(default_factory=list)
    seed: int | None = 0
    description: str = ""
    source: str = "<grid>"

    @property
    def varying_params(self) -> list[str]:
        keys = sorted({k for p in self.param_sets for k in p})
        return [k for k in keys if len({json.dumps(p.get(k), sort_keys=True) for p in self.param_sets}) > 1]


def _expand_params(raw: dict[str, Any] | list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """Parameter sets: a list is taken as is; a mapping's list values are axes of a product."""
    if isinstance(raw, list):
        sets = [dict(p) for p in raw] or [{}]
    else:
        axes = []
        for k, v in raw.items():
            # `stop` is itself a list: only a list of lists is an axis for it
            is_axis = isinstance(v, list) and (k != "stop" or all(isinstance(x, list) for x in v))
            axes.append([(k, x) for x in v] if is_axis else [(k, v)])
            if is_axis and not v:
                raise InputFileError(source, "an empty list of values", field=f"params.{k}")
        sets = [dict(combo) for combo in itertools.product(*axes)] if axes else [{}]
    for i, p in enumerate(sets):
        try:
            GenerationParams.from_kwargs(**p)
        except LLMLabError as e:
            raise InputFileError(source, str(e), field=f"params[{i}]") from None
    return sets


def _template_entry(entry: str | dict[str, Any], i: int, base: Path, source: str) -> PromptTemplate:
    where = f"templates.{i}"
    try:
        if isinstance(entry, str):
            return load_template(entry, base_dir=base)
        if set(entry) == {"path"}:
            return load_template(str(entry["path"]), base_dir=base)
        if "prompt" in entry:
            extra = set(entry) - {"prompt", "name", "system", "params"}
            if extra:
                raise InputFileError(source, f"unknown key(s) {', '.join(sorted(extra))} for an inline prompt "
                                             f"(valid: prompt, name, system, params)", field=where)
            return inline_template(entry["prompt"], name=entry.get("name", f"prompt{i + 1}"),
                                   system=entry.get("system"), params=entry.get("params"), source=f"{source} ({where})")
        return PromptTemplate.from_dict(entry, f"{source} ({where})")
    except InputFileError:
        raise  # it names the template file (or the inline entry) already
    except LLMLabError as e:  # e.g. an unknown library name
        raise InputFileError(source, str(e), field=where) from None


def _inputs(raw: Any, base: Path, source: str) -> list[dict[str, Any]]:
    if isinstance(raw, dict):
        from ..eval.data import read_jsonl

        return read_jsonl(base / raw["file"])
    out = []
    for i, item in enumerate(raw):
        out.append({"text": item} if isinstance(item, str) else dict(item))
    return out


def load_grid(path: str | Path) -> Grid:
    """Read and validate a grid file; every problem names the file and the field."""
    p = Path(path)
    return grid_from_dict(read_yaml(p), source=str(p), base=p.parent)


def grid_from_dict(data: Any, *, source: str = "<grid>", base: str | Path = ".") -> Grid:
    base = Path(base)
    if not isinstance(data, dict):
        raise InputFileError(source, "a grid file must be a mapping with 'templates' and 'inputs'")
    try:
        gf = GridFile.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"] if not str(x).startswith(("str", "list[", "dict[")))
        raise InputFileError(source, err["msg"].removeprefix("Value error, "), field=loc or None) from None
    templates = [_template_entry(t, i, base, source) for i, t in enumerate(gf.templates)]
    names = [t.name for t in templates]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputFileError(source, f"two templates are named {', '.join(dup)}; give each a distinct name",
                             field="templates")
    models = [ModelEntry(name=m) if isinstance(m, str) else m for m in gf.models]
    if not models:
        from ..config import load_settings

        models = [ModelEntry(name=load_settings().default_model)]
    param_sets = _expand_params(gf.params, source)
    inputs = _inputs(gf.inputs, base, source)
    known = set().union(*(t.variables for t in templates)) | set(INPUT_META_FIELDS)
    for i, inp in enumerate(inputs):
        unknown = sorted(set(inp) - known)
        if unknown:
            raise InputFileError(source, f"unknown field(s) {', '.join(unknown)}: no template declares them "
                                         f"(template variables: {', '.join(sorted(known - set(INPUT_META_FIELDS)))})",
                                 field=f"inputs.{i}")
        for t in templates:
            try:
                t.render(template_vars(t, inp))
            except TemplateError as e:
                raise InputFileError(source, str(e), field=f"inputs.{i}") from None
    try:
        scorers = [make_scorer(s) for s in gf.scorers]
    except LLMLabError as e:
        raise InputFileError(source, str(e), field="scorers") from None
    return Grid(name=gf.name, templates=templates, models=models, param_sets=param_sets, inputs=inputs,
                scorers=scorers, seed=gf.seed, description=gf.description, source=source)


def template_vars(tpl: PromptTemplate, inp: dict[str, Any]) -> dict[str, Any]:
    """The input's fields this template declares."""
    return {k: v for k, v in inp.items() if k in tpl.variables}


# -- expansion ------------------------------------------------------------------------------
@dataclass
class Variant:
    """One column of the side-by-side table: a template × model × parameter set."""

    index: int
    template: PromptTemplate
    model: ModelEntry
    params: dict[str, Any]
    label: str


@dataclass
class Cell:
    input_index: int
    variant: Variant
    input: dict[str, Any]
    params: dict[str, Any]  # the template's defaults, the parameter set and the grid seed
    key: str


def _digest(obj: Any, n: int = 16) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()[:n]


def variants(grid: Grid) -> list[Variant]:
    vary = grid.varying_params
    out = []
    for t, m, p in itertools.product(grid.templates, grid.models, grid.param_sets):
        bits = [t.name]
        if len(grid.models) > 1:
            bits.append(m.display)
        bits += [f"{k}={p[k]}" for k in vary if k in p]
        out.append(Variant(len(out), t, m, p, " · ".join(bits)))
    return out


def expand(grid: Grid) -> list[Cell]:
    """Every cell, input-major (all variants of input 0, then input 1, …)."""
    cells = []
    vs = variants(grid)
    for i, inp in enumerate(grid.inputs):
        for v in vs:
            params = v.template.generation_params(**v.params)
            if "seed" not in params and grid.seed is not None:
                params["seed"] = grid.seed
            key = _digest({"template": v.template.fingerprint, "model": v.model.key(), "params": params,
                           "input": template_vars(v.template, inp)})
            cells.append(Cell(i, v, inp, params, key))
    return cells


def experiment_id(grid: Grid, cells: list[Cell] | None = None) -> str:
    """A stable id for the grid's content: the same grid resumes the same experiment."""
    cells = cells if cells is not None else expand(grid)
    slug = re.sub(r"[^a-z0-9]+", "-", grid.name.lower()).strip("-") or "grid"
    return f"grid-{slug}-{_digest(sorted(c.key for c in cells), 10)}"


# -- running --------------------------------------------------------------------------------
@dataclass
class CellResult:
    cell: Cell
    output: str
    usage: dict[str, int]
    latency_s: float
    cost_usd: float = 0.0
    scores: dict[str, float | None] = field(default_factory=dict)
    run_id: int | None = None
    reused: bool = False
    structured: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        v = self.cell.variant
        d = {
            "template": v.template.name,
            "model": v.model.display,
            "params": self.cell.params,
            "input": self.cell.input,
            "input_index": self.cell.input_index,
            "variant": v.label,
            "output": self.output,
            "usage": self.usage,
            "latency_s": self.latency_s,
            "cost_usd": self.cost_usd,
            "scores": self.scores,
            "run_id": self.run_id,
            "reused": self.reused,
            "cell_key": self.cell.key,
        }
        if self.structured is not None:
            d["structured"] = self.structured
        return d


@dataclass
class GridResult:
    grid: Grid
    experiment: str
    cells: list[CellResult]
    variants: list[Variant]
    wall_s: float = 0.0

    @property
    def computed(self) -> int:
        return sum(1 for c in self.cells if not c.reused)

    @property
    def reused(self) -> int:
        return sum(1 for c in self.cells if c.reused)

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "grid": self.grid.name, "n_cells": len(self.cells),
                "computed": self.computed, "reused": self.reused, "wall_s": round(self.wall_s, 3),
                "cells": [c.to_dict() for c in self.cells]}


ModelLoader = Callable[[ModelEntry], Any]


def default_loader(settings: Any = None, **overrides: Any) -> ModelLoader:
    """Load grid models without their own ledger recording (the grid records each cell)."""

    def load(entry: ModelEntry):
        from ..models.model import load_model

        opts = {**overrides, **entry.options}
        return load_model(entry.name, backend=entry.backend, settings=settings, ledger=False, **opts)

    return load


def finished_cells(ledger: Any, experiment: str) -> dict[str, Any]:
    """Cells of ``experiment`` already in the ledger, by cell key (the newest record wins)."""
    if ledger is None:
        return {}
    done: dict[str, Any] = {}
    for rec in reversed(ledger.runs(limit=1_000_000, kind=CELL_KIND, experiment=experiment)):
        key = rec.meta.get("cell_key")
        if key:
            done[key] = rec
    return done


def run_grid(grid: Grid, *, ledger: Any = None, loader: ModelLoader | None = None, fresh: bool = False,
             experiment: str | None = None, progress: Callable[[int, int, CellResult], None] | None = None) -> GridResult:
    """Run every cell not already finished, record each in ``ledger``, and score them all.

    ``progress(done, total, cell_result)`` is called after each cell (reused ones too).
    On an error or interruption the finished cells stay recorded; run again to resume.
    """
    from ..ledger import RunRecord
    from ..models import pricing

    t0 = time.perf_counter()
    cells = expand(grid)
    exp = experiment or experiment_id(grid, cells)
    if fresh and experiment is None:
        exp = f"{exp}-{time.strftime('%Y%m%d%H%M%S')}"
    if ledger is None:
        log.warning("the run ledger is off: grid cells are not recorded and cannot be resumed")
    done = {} if fresh else finished_cells(ledger, exp)
    loader = loader or default_loader()
    models: dict[int, Any] = {}
    results: list[CellResult] = []
    try:
        for n, cell in enumerate(cells, 1):
            v = cell.variant
            rec = done.get(cell.key)
            if rec is not None:
                res = CellResult(cell, (rec.output or [""])[0], rec.to_dict()["usage"], rec.latency_s or 0.0,
                                 rec.cost_usd, run_id=rec.id, reused=True)
                constrained = bool(rec.meta.get("constrained"))
            else:
                mi = grid.models.index(v.model)
                if mi not in models:
                    models[mi] = loader(v.model)
                model = models[mi]
                messages = v.template.messages(template_vars(v.template, cell.input))
                params, constrained = constrained_params(model, v.template, cell.params)
                c = model.chat(messages, **params)
                price = pricing.price_for(model.spec.remote_model, model.spec.price)
                cost = pricing.cost_usd(model.backend.name, c.usage.prompt_tokens, c.usage.completion_tokens, price)
                run_id = None
                if ledger is not None:
                    run_id = ledger.record(RunRecord(
                        kind=CELL_KIND, model=model.name, backend=model.backend.name, params=c.params.to_dict(),
                        messages=[m.to_dict() for m in messages], output=c.texts,
                        prompt_tokens=c.usage.prompt_tokens, completion_tokens=c.usage.completion_tokens,
                        latency_s=round(c.latency_s, 4), cost_usd=cost, experiment=exp,
                        meta={"cell_key": cell.key, "grid": grid.name, "template": v.template.name,
                              "template_fingerprint": v.template.fingerprint, "variant": v.label,
                              "input_index": cell.input_index, "input": cell.input, "constrained": constrained,
                              "finish_reasons": [s.finish_reason for s in c.sequences]},
                    ))
                res = CellResult(cell, c.text, c.usage.to_dict(), round(c.latency_s, 4), cost, run_id=run_id)
            _score(grid, res, constrained)
            results.append(res)
            if progress is not None:
                progress(n, len(cells), res)
    finally:
        for m in models.values():
            m.close()
    return GridResult(grid, exp, results, variants(grid), time.perf_counter() - t0)


def _score(grid: Grid, res: CellResult, constrained: bool) -> None:
    tpl = res.cell.variant.template
    if tpl.schema is not None:
        res.structured = parse_structured(res.output, tpl.schema, constrained=constrained).to_dict()
    for label, scorer in grid.scorers:
        try:
            res.scores[label] = scorer(res.output, res.cell.input, tpl)
        except LLMLabError as e:
            log.warning("scorer %s failed on a cell: %s", label, e)
            res.scores[label] = None

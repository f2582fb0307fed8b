"""Models screen: what this machine has, what is loaded, the Korean-capable catalog, fit and pull.

Every table comes from the same functions ``llmlab models list|fit|pull`` print: listing,
the curated catalog with :func:`~llmlab.models.fit.estimate_fit` per entry, and
:func:`~llmlab.models.pull.pull` with the download's progress bar shown in the page.
"""
from __future__ import annotations

from typing import Any

from ..choices import model_names
from ..feedback import user_errors
from ..access import require_admin
from ..lab import Lab
from ..labels import bi, gib, info

LOCAL_COLUMNS = ["name", "kind", "backend", "format", "size", "languages / notes"]
CATALOG_COLUMNS = ["name", "params", "needs (default form)", "fits RAM", "fits GPU", "pulled", "licence", "context",
                   "Korean"]
FIT_COLUMNS = ["component", "memory", "how"]


def _yes_no(v: bool | None) -> str:
    return "-" if v is None else ("✓" if v else "✗")


def local_rows(lab: Lab) -> list[list[Any]]:
    from ...models.listing import list_models

    return [[e.name, e.kind, e.backend, e.format, gib(e.size_bytes), e.languages or e.notes]
            for e in list_models(lab.settings)]


def loaded_rows(lab: Lab) -> list[list[Any]]:
    return [[m["name"], m["backend"], m["context_length"]] for m in lab.loaded()]


def catalog_rows(lab: Lab) -> list[list[Any]]:
    from ...models import catalog
    from ...models.fit import estimate_fit, machine_resources

    machine = machine_resources()
    rows = []
    for e in catalog.load_catalog().models:
        r = estimate_fit(e.name, settings=lab.settings, machine=machine)
        lic = e.license_id + ("" if e.commercial_use else " [NC]") + (" [gated]" if e.gated else "")
        rows.append([e.name, f"{e.params / 1e9:.1f}B", f"{gib(r.total_bytes)} ({r.weights})", _yes_no(r.fits_ram),
                     _yes_no(r.fits_gpu), _yes_no(catalog.cached_path(e) is not None), lic,
                     f"{e.context_length // 1024}K", e.korean])
    return rows


def machine_text() -> str:
    from ...models.fit import machine_resources

    m = machine_resources()
    gpu = f"GPU {m.gpu_name}: {gib(m.gpu_free)} free / {gib(m.gpu_total)}" if m.gpu_total else "GPU: 없음 · none"
    return f"**이 컴퓨터 · This machine** — RAM {gib(m.ram_available)} available / {gib(m.ram_total)} · {gpu}"


@user_errors
def fit(lab: Lab, model: str, quant: str, context: float | None, train: str, load_in: str, batch_size: float,
        seq_len: float | None):
    from ...models.fit import estimate_fit

    r = estimate_fit(model, settings=lab.settings, quant=quant or None, context=int(context) if context else None,
                     train=None if train == "inference" else train, load_in=None if load_in == "none" else load_in,
                     batch_size=int(batch_size or 1), seq_len=int(seq_len) if seq_len else None)
    rows = [[c.name, gib(c.bytes), c.note] for c in r.components] + [["total", gib(r.total_bytes), ""]]
    return rows, r.verdict


@user_errors
@user_errors
def pull(lab: Lab, spec: str, quant: str, hf_form: bool, progress: Any = None):
    """Download with the Hub's progress bar mirrored in the page; returns the log and the result."""
    import gradio as gr

    require_admin("내려받기 · Pull")
    from ...models.pull import pull as run_pull

    if not spec.strip():
        raise gr.Error("모델 이름을 입력하세요 · Enter a model name or repo id")
    lines: list[str] = []
    r = run_pull(spec.strip(), quant=quant or None, form="hf" if hf_form else None, progress=True,
                 log_line=lines.append, settings=lab.settings)
    lines.append(f"{r.model}: {r.path}")
    lines += r.notes
    return "\n".join(lines)


def build(lab: Lab) -> None:
    """The Models tab's contents (call inside ``gr.Tab``)."""
    import gradio as gr

    gr.Markdown("## 모델 · Models\n" + info(
        "이 컴퓨터에 있는 모델, 불러온 모델, 내려받을 수 있는 한국어 모델과 메모리 추정",
        "models on this machine, loaded models, Korean-capable models to download and memory estimates"))
    machine = gr.Markdown(machine_text())
    refresh = gr.Button(bi("새로 고침", "Refresh"), size="sm", elem_id="models-refresh")

    with gr.Accordion(bi("이 컴퓨터의 모델", "Models on this machine"), open=True):
        local = gr.Dataframe(headers=LOCAL_COLUMNS, value=lambda: local_rows(lab), interactive=False, wrap=True,
                             elem_id="models-local",
                             column_widths=["22%", "8%", "9%", "8%", "8%", "45%"])

    with gr.Accordion(bi("불러온 모델", "Loaded models"), open=True):
        loaded = gr.Dataframe(headers=["name", "backend", "context"], value=lambda: loaded_rows(lab),
                              interactive=False)
        with gr.Row():
            pick = gr.Dropdown(choices=model_names(lab), value=lab.settings.default_model, allow_custom_value=True,
                               label=bi("모델", "Model"), scale=3)
            load_btn = gr.Button(bi("불러오기", "Load"), scale=1)
            unload_btn = gr.Button(bi("내리기", "Unload"), scale=1)

    with gr.Accordion(bi("카탈로그 (한국어 모델)", "Catalog (Korean-capable models)"), open=True):
        gr.Markdown(info("맞는지 여부는 기본 양자화 · 기본 문맥 길이 기준 추정", "fit: estimated for the default "
                         "quantization and context") + " · [NC] = 비상업 · non-commercial")
        cat = gr.Dataframe(headers=CATALOG_COLUMNS, value=lambda: catalog_rows(lab), interactive=False, wrap=True,
                           column_widths=["16%", "6%", "14%", "6%", "6%", "6%", "10%", "6%", "30%"])

    with gr.Accordion(bi("메모리 추정", "Will it fit?"), open=False):
        with gr.Row():
            fit_model = gr.Dropdown(choices=model_names(lab), value=lab.settings.default_model,
                                    allow_custom_value=True, label=bi("모델", "Model"))
            fit_quant = gr.Textbox(label="quant", placeholder="q4_k_m, q8_0, f16 …",
                                   info=info("GGUF 양자화 (비우면 파일 그대로)", "GGUF quantization (empty: as stored)"))
            fit_ctx = gr.Number(value=0, precision=0, label="context",
                                info=info("문맥 길이 (0 = 기본값)", "context length (0 = default)"))
        with gr.Row():
            fit_train = gr.Radio(["inference", "lora", "qlora", "full"], value="inference",
                                 label=bi("용도", "Use"), info=info("추론 또는 미세조정", "inference or fine-tuning"))
            fit_load_in = gr.Radio(["none", "4bit", "8bit"], value="none", label="load_in",
                                   info=info("bitsandbytes 양자화 로딩 (CUDA)", "bitsandbytes loading (CUDA)"))
            fit_batch = gr.Number(value=1, precision=0, label="batch_size")
            fit_seq = gr.Number(value=0, precision=0, label="seq_len",
                                info=info("학습 시퀀스 길이 (0 = 기본값)", "training sequence length (0 = default)"))
        fit_btn = gr.Button(bi("추정하기", "Estimate"))
        fit_verdict = gr.Markdown()
        fit_table = gr.Dataframe(headers=FIT_COLUMNS, interactive=False, wrap=True)

    with gr.Accordion(bi("내려받기", "Pull"), open=False):
        gr.Markdown(info("카탈로그 이름 또는 Hugging Face 저장소 id. 끊겨도 다시 누르면 이어받고 체크섬을 확인",
                         "a catalog name or Hugging Face repo id; resumes after an interruption and verifies checksums"))
        with gr.Row():
            spec = gr.Dropdown(choices=_catalog_names(), allow_custom_value=True, label=bi("모델", "Model"), scale=3)
            quant = gr.Textbox(label="quant", placeholder="q4_k_m", scale=1)
            hf_form = gr.Checkbox(label=bi("transformers 형식", "transformers (HF) form"), scale=1)
        pull_btn = gr.Button(bi("내려받기", "Pull"), variant="primary")
        pull_log = gr.Textbox(label=bi("진행 기록", "Log"), lines=6, interactive=False)

    def refresh_all():
        names = model_names(lab)
        return (machine_text(), local_rows(lab), loaded_rows(lab), catalog_rows(lab), gr.update(choices=names),
                gr.update(choices=names))

    refresh.click(refresh_all, outputs=[machine, local, loaded, cat, pick, fit_model])

    @user_errors
    def load(name: str):
        require_admin("불러오기 · Load")
        with lab.use(name):
            pass
        return loaded_rows(lab)

    @user_errors
    def unload(name: str):
        require_admin("내리기 · Unload")
        if not lab.unload(name):
            gr.Info(f"{name}: 불러온 적 없음 · not loaded")
        return loaded_rows(lab)

    load_btn.click(load, pick, loaded)
    unload_btn.click(unload, pick, loaded)
    fit_btn.click(lambda *a: fit(lab, *a), [fit_model, fit_quant, fit_ctx, fit_train, fit_load_in, fit_batch, fit_seq],
                  [fit_table, fit_verdict])

    def do_pull(spec_v: str, quant_v: str, hf_v: bool, progress=gr.Progress(track_tqdm=True)):
        return pull(lab, spec_v, quant_v, hf_v, progress)

    pull_btn.click(do_pull, [spec, quant, hf_form], pull_log).then(
        refresh_all, outputs=[machine, local, loaded, cat, pick, fit_model])


def _catalog_names() -> list[str]:
    from ...models import catalog

    return [e.name for e in catalog.load_catalog().models]

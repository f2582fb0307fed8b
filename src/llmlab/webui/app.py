"""The whole UI as one Gradio ``Blocks``: a tab per screen, each built by its own module."""
from __future__ import annotations

import html
from typing import Any

from .lab import Lab
from .labels import bi

TITLE = "LLM 실습실 · llmlab"


def build_ui(lab: Lab) -> Any:
    """The Gradio app for ``lab`` (not mounted or launched; see :func:`llmlab.webui.mount_ui`)."""
    import gradio as gr

    from .screens import chat, documents, finetune, models, prompt_lab, usage

    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_width=True) as blocks:
        gr.Markdown(f"# {TITLE}\n오프라인 우선 · 한국어 우선 LLM 실습실 — an offline-first, Korean-first LLM lab")
        # shown once the page knows a key signed it in (a server with keys); the server answers /logout
        who = gr.HTML(visible=False, elem_id="signed-in")
        with gr.Tabs():
            with gr.Tab(bi("채팅", "Chat"), id="chat"):
                chat.build(lab)
            with gr.Tab(bi("모델", "Models"), id="models"):
                models.build(lab)
            with gr.Tab(bi("프롬프트 실험", "Prompt lab"), id="prompts"):
                prompt_lab.build(lab)
            with gr.Tab(bi("문서 (RAG)", "Documents"), id="documents"):
                documents.build(lab)
            with gr.Tab(bi("미세조정", "Fine-tuning"), id="finetune"):
                finetune.build(lab)
            with gr.Tab(bi("사용량", "Usage"), id="usage") as usage_tab:
                usage.build(lab, usage_tab)
        blocks.load(_signed_in_line, outputs=who)
    return blocks


def _signed_in_line() -> Any:
    import gradio as gr

    from .access import ANONYMOUS_ID, signed_in

    me = signed_in()
    if me is None or me[1] == ANONYMOUS_ID:
        return gr.update(visible=False)
    role, kid = (html.escape(x) for x in me)
    return gr.update(visible=True, value=f"{bi('키', 'Key')} <code>{kid}</code> · {role} · "
                                         f'<a href="/logout" target="_self">{bi("로그아웃", "Log out")}</a>')

"""Chat screen: a streamed conversation through :class:`~llmlab.chat.ChatSession`.

The session trims history to the context window and records every turn in the ledger under
the session's name, exactly as ``llmlab chat --session NAME`` does, so a conversation started
here can be resumed here or in the terminal. Each answer shows its token counts and speed.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import params as gen_params
from ..choices import model_names, session_names
from ..feedback import user_errors
from ..lab import GENERATIONS, Lab
from ..labels import bi, info
from ..access import owner_filter

LOGPROB_COLUMNS = ["token", "logprob", "top alternatives"]


def new_session_name() -> str:
    return f"web-{datetime.now():%Y%m%d-%H%M%S}"


def stats_line(c: Any, trimmed: int = 0) -> str:
    """One line under an answer: tokens, speed, time to first token, why it stopped."""
    bits = [f"{c.usage.prompt_tokens} → {c.usage.completion_tokens} tokens", f"{c.tokens_per_s:.1f} tok/s",
            f"{c.latency_s:.2f} s"]
    if c.first_token_s is not None:
        bits.append(f"첫 토큰 · first token {c.first_token_s:.2f} s")
    if c.finish_reason == "length":
        bits.append("길이 제한으로 끊김 · cut at max tokens")
    if c.params.seed is not None and c.params.sampling:
        bits.append(f"seed {c.params.seed}")
    if trimmed:
        bits.append(f"오래된 메시지 {trimmed}개 생략 · {trimmed} old message(s) left out")
    return " · ".join(bits)


def saved_note(session: str, c: Any) -> str:
    """Where the turn was recorded (nothing when the ledger is off)."""
    if c.run_id is None:
        return ""
    return (f"세션 `{session}`에 저장됨 (기록 #{c.run_id}) · saved to session `{session}` (run #{c.run_id}) — "
            f"llmlab chat --session {session}")


def answer_markdown(c: Any, trimmed: int = 0) -> str:
    """What the chat shows for a finished answer: the text, other samples, then the stats line."""
    parts = [c.text]
    for i, extra in enumerate(c.texts[1:], start=2):
        parts.append(f"**[{i}]** {extra}")
    parts.append(f"<sub>{stats_line(c, trimmed)}</sub>")
    return "\n\n".join(parts)


def logprob_rows(c: Any) -> list[list[Any]]:
    seq = c.sequences[0] if c.sequences else None
    if seq is None or not seq.logprobs:
        return []
    return [[lp.token, round(lp.logprob, 4), ", ".join(f"{t!r} {v:.2f}" for t, v in lp.top)] for lp in seq.logprobs]


@user_errors
def send(lab: Lab, message: str, turns: list[dict], display: list[dict], model_name: str, system: str,
         session: str, *param_values: Any):
    """Stream one answer; yields (textbox, chatbot, turns, session, stats, logprobs)."""
    from ...chat import ChatSession
    from ...types import Message

    if not (message or "").strip():
        return
    start = gen_params.start_values(gen_params.model_defaults(lab.settings, model_name))
    kwargs = gen_params.to_kwargs(param_values, start)  # only what the user changed; the model's defaults fill the rest
    session = (session or "").strip() or new_session_name()
    display = list(display) + [{"role": "user", "content": message}, {"role": "assistant", "content": "…"}]
    yield "", display, turns, session, "", []
    with lab.use(model_name) as model:
        chat = ChatSession(model, system=(system or "").strip() or None, session=session, resume=False)
        chat.history = [Message(t["role"], t["content"]) for t in turns]
        stream = chat.send(message, **kwargs)
        text = ""
        for delta in stream:
            if delta.index == 0:
                text += delta.text
                display = display[:-1] + [{"role": "assistant", "content": text}]
                yield "", display, turns, session, "", []
        c = stream.completion
    display = display[:-1] + [{"role": "assistant", "content": answer_markdown(c, chat.trimmed_turns)}]
    turns = list(turns) + [{"role": "user", "content": message}, {"role": "assistant", "content": c.text}]
    yield "", display, turns, session, saved_note(session, c), logprob_rows(c)


@user_errors
def open_session(lab: Lab, name: str):
    """Load a saved session: (turns, chatbot, system prompt, model)."""
    import gradio as gr

    ledger = lab.ledger()
    saved = ledger.session(name, owner=owner_filter()) if ledger is not None and name else None
    if saved is None:  # a new name: start empty
        return [], [], gr.update(), gr.update()
    turns = [m for m in saved["messages"] if m["role"] in ("user", "assistant")]
    return turns, [dict(m) for m in turns], saved["system"] or "", saved["model"] or gr.update()


def build(lab: Lab) -> None:
    """The Chat tab's contents (call inside ``gr.Tab``)."""
    import gradio as gr

    turns = gr.State([])
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            model = gr.Dropdown(choices=model_names(lab), value=lab.settings.default_model, allow_custom_value=True,
                                label=bi("모델", "Model"), elem_id="chat-model")
            with gr.Row():
                # choices are filled when the list is opened: which sessions show depends on who is signed in
                session = gr.Dropdown(choices=[], value=new_session_name, allow_custom_value=True,
                                      label=bi("대화 세션", "Session"), scale=3, elem_id="chat-session",
                                      info=info("대화는 실행 기록에 저장돼 이어 갈 수 있음",
                                                "saved in the run ledger; pick one to resume"))
                new = gr.Button(bi("새 대화", "New chat"), size="sm", scale=1)
            system = gr.Textbox(label=bi("시스템 프롬프트", "System prompt"), lines=3,
                                placeholder="You are a helpful assistant. / 친절한 도우미입니다.",
                                info=info("모든 답에 앞서 모델에게 주는 지시", "instructions given before every answer"))
            with gr.Accordion(bi("생성 설정", "Generation parameters"), open=False):
                controls = gen_params.controls(gen_params.model_defaults(lab.settings, None), prefix="chat")
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label=bi("대화", "Conversation"), height=520, elem_id="chat-box",
                                 buttons=["copy"], feedback_options=None)
            with gr.Row():
                box = gr.Textbox(show_label=False, placeholder="메시지를 입력하세요 · Type a message", scale=6,
                                 elem_id="chat-input", submit_btn=False, lines=1)
                send_btn = gr.Button(bi("보내기", "Send"), variant="primary", scale=1, elem_id="chat-send")
                stop_btn = gr.Button(bi("멈추기", "Stop"), scale=1, elem_id="chat-stop")
            stats = gr.Markdown(elem_id="chat-stats")
            with gr.Accordion(bi("토큰 확률 (logprobs)", "Token log-probabilities"), open=False):
                logprobs = gr.Dataframe(headers=LOGPROB_COLUMNS, interactive=False, wrap=True)

    inputs = [box, turns, chatbot, model, system, session, *controls]
    outputs = [box, chatbot, turns, session, stats, logprobs]

    def go(*args: Any):
        yield from send(lab, *args)

    events = [trigger(go, inputs, outputs, concurrency_id="chat", concurrency_limit=GENERATIONS)
              for trigger in (box.submit, send_btn.click)]
    stop_btn.click(None, cancels=events)

    def fresh():
        return [], [], gr.update(value=new_session_name(), choices=session_names(lab)), "", []

    new.click(fresh, outputs=[turns, chatbot, session, stats, logprobs])
    session.select(lambda name: open_session(lab, name), session, [turns, chatbot, system, model])
    # another model: the controls start again at its recommended defaults
    model.change(lambda name: gen_params.start_values(gen_params.model_defaults(lab.settings, name)), model, controls)
    session.focus(lambda: gr.update(choices=session_names(lab)), outputs=session)

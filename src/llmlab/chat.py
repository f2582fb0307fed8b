"""Multi-turn chat with history: the capability behind ``llmlab chat`` and the web UI.

A :class:`ChatSession` keeps the conversation, trims the oldest turns so the prompt plus
the reply budget fits the model's context window (the system prompt is always kept),
and — when given a session name — persists every turn in the ledger so the conversation
can be resumed later.
"""
from __future__ import annotations

import logging
from typing import Any

from .errors import ContextOverflowError, LLMLabError
from .models.model import Model, Stream
from .types import GenerationParams, Message

log = logging.getLogger(__name__)


class ChatSession:
    """A conversation with one model."""

    def __init__(self, model: Model, *, system: str | None = None, session: str | None = None, ledger=None,
                 resume: bool = True):
        self.model = model
        self.session = session
        self._ledger = ledger if ledger is not None else getattr(model, "_ledger", None)
        self.system = system
        self.history: list[Message] = []
        self.trimmed_turns = 0
        if session and resume and self._ledger is not None:
            saved = self._ledger.session(session)
            if saved:
                self.system = system if system is not None else saved["system"]
                self.history = [Message(m["role"], m["content"]) for m in saved["messages"] if m["role"] != "system"]

    @property
    def messages(self) -> list[Message]:
        head = [Message("system", self.system)] if self.system else []
        return head + self.history

    def _fit(self, pending: list[Message], reply_budget: int) -> list[Message]:
        """The system prompt + as many recent messages as fit with ``reply_budget`` tokens to spare."""
        head = [Message("system", self.system)] if self.system else []
        window = self.model.context_length
        body = list(self.history) + pending
        dropped = 0
        while True:
            msgs = head + body
            if self.model.count_chat_tokens(msgs) + reply_budget <= window:
                break
            # drop the oldest whole exchange (user + assistant), never the new message
            if len(body) <= len(pending):
                raise ContextOverflowError(
                    f"the message does not fit the context window of {window} tokens with room for a "
                    f"{reply_budget}-token reply; shorten it or lower max_new_tokens"
                )
            cut = 2 if len(body) - len(pending) >= 2 else 1
            body = body[cut:]
            dropped += cut
        if dropped:
            log.info("chat history trimmed: %d oldest message(s) left out to fit the context window", dropped)
        self.trimmed_turns = dropped
        return head + body

    def send(self, text: str, **params: Any) -> Stream:
        """Send a user message; returns a stream of the reply (history updates when it ends)."""
        user = Message("user", text)
        gp = GenerationParams.from_kwargs(**params)
        budget = min(gp.new_token_budget(0), self.model.context_length // 2)
        msgs = self._fit([user], budget)
        inner = self.model.stream_chat(msgs, session=self.session, **params)

        def events():
            yield from inner
            if inner.completion is not None:
                yield inner.completion

        def finish(c):
            self._remember(user, Message("assistant", c.text), c.run_id)
            return c

        return Stream(events(), finish)

    def ask(self, text: str, **params: Any):
        """Send a message and wait for the whole reply (a Completion)."""
        s = self.send(text, **params)
        for _ in s:
            pass
        return s.completion

    def _remember(self, user: Message, reply: Message, run_id: int | None) -> None:
        self.history += [user, reply]
        if self.session and self._ledger is not None:
            try:
                self._ledger.append_turn(self.session, self.model.name, self.system,
                                         [user.to_dict(), reply.to_dict()], run_id=run_id)
            except LLMLabError as e:  # the reply stays in this conversation; only its saving failed
                log.warning("the reply is kept in this conversation but the session was not saved: %s", e)

    def reset(self) -> None:
        self.history = []

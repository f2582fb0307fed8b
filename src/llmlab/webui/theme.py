"""The UI's look: fonts that ship with Gradio or the system (nothing fetched from the web),
Hangul-first fallbacks, and the few styles the citation links need."""
from __future__ import annotations

from typing import Any

#: Hangul glyphs come from the system's Noto CJK (Debian: fonts-noto-cjk) or the OS's Korean font
SANS = ["Noto Sans CJK KR", "Noto Sans KR", "Apple SD Gothic Neo", "Malgun Gothic", "system-ui", "sans-serif"]
MONO = ["Noto Sans Mono CJK KR", "ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]

CSS = """
.llmlab-answer { line-height: 1.6; padding: 8px 0; }
.llmlab-answer a.cite, .cite-card a.cite-head { color: var(--color-accent); font-weight: 600; text-decoration: none;
  cursor: pointer; }
.llmlab-answer a.cite:hover, .cite-card a.cite-head:hover { text-decoration: underline; }
.llmlab-citations h4 { margin: 8px 0 4px; }
.cite-card { border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 6px 10px; margin: 6px 0;
  scroll-margin-top: 80px; }
.cite-card .cite-text { font-size: 0.9em; color: var(--body-text-color-subdued); white-space: pre-wrap;
  display: -webkit-box; -webkit-line-clamp: 3; -webkit-box-orient: vertical; overflow: hidden; }
.cite-card:target { border-color: var(--color-accent); box-shadow: 0 0 0 2px var(--color-accent-soft); }
.cite-card:target .cite-text { display: block; -webkit-line-clamp: unset; }
.cite-card .uncited { font-size: 0.8em; color: var(--body-text-color-subdued); margin-left: 6px; }
#chat-stats { font-size: 0.9em; color: var(--body-text-color-subdued); }
"""


def theme() -> Any:
    """Gradio's default theme with its bundled Latin fonts first and Korean fonts behind them."""
    import gradio as gr

    return gr.themes.Default(
        primary_hue="indigo",
        font=[gr.themes.LocalFont("Source Sans Pro"), *SANS],
        font_mono=[gr.themes.LocalFont("IBM Plex Mono"), *MONO],
    )

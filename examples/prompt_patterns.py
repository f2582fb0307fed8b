"""Run every built-in prompt pattern on its Korean and English samples and print Markdown.

    python examples/prompt_patterns.py [--model smollm2-135m] [--threads 1]

docs/prompts.md shows the output of this script on the bundled model.
"""
from __future__ import annotations

import argparse
import json

from llmlab import load_model
from llmlab.prompts import library, run_template


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    model = load_model(args.model, ledger=False, threads=args.threads)
    try:
        for tpl in library():
            print(f"### {tpl.name}\n")
            for sample in tpl.samples:
                res = run_template(model, tpl, sample.vars)
                c = res.completion
                print(f"**{sample.lang}** — `llmlab prompt run {tpl.name} --sample {sample.lang}`\n")
                print("```text\n" + res.messages[-1].content + "\n```\n")
                print("→\n\n```text\n" + c.text.strip() + "\n```\n")
                note = f"{c.usage.prompt_tokens} prompt + {c.usage.completion_tokens} completion tokens"
                if res.structured is not None:
                    s = res.structured
                    note += f"; schema {'valid' if s.valid else 'invalid'}"
                    note += " (constrained decoding)" if s.constrained else ""
                print(f"_{note}; params {json.dumps(tpl.generation_params(), ensure_ascii=False)}_\n")
    finally:
        model.close()


if __name__ == "__main__":
    main()

"""The CLI contract: `llmlab generate/chat/logs/usage` as a user runs them (real bundled model)."""
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def run(args, home, stdin=None, check=True):
    env = dict(os.environ, LLMLAB_HOME=str(home), LLMLAB_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "llmlab.cli.main", *args], input=stdin, capture_output=True, text=True,
                       env=env, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def test_generate_json_and_ledger_row(llmlab_home):
    p = run(["generate", "The capital of France is", "--max-new-tokens", "16", "--json"], llmlab_home)
    out = json.loads(p.stdout)
    for key in ("text", "texts", "model", "backend", "params", "usage", "latency_s", "tokens_per_s", "threads"):
        assert key in out, key
    assert out["text"].strip() and out["backend"] == "llamacpp" and out["model"] == "smollm2-135m"
    assert set(out["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    logs = json.loads(run(["logs", "--json"], llmlab_home).stdout)["runs"]
    assert logs[0]["output"] == [out["text"]] and logs[0]["id"] == out["run_id"]
    usage = json.loads(run(["usage", "--json"], llmlab_home).stdout)
    assert usage["by_model"][0]["model"] == "smollm2-135m" and usage["by_model"][0]["calls"] == 1


def test_chat_reads_turns_from_stdin_and_resumes_sessions(llmlab_home):
    p = run(["chat", "--json", "--session", "s1", "--max-new-tokens", "12", "--greedy"], llmlab_home,
            stdin="hi\nWhat is 2+2?\n")
    turns = [json.loads(line) for line in p.stdout.splitlines()]
    assert [t["user"] for t in turns] == ["hi", "What is 2+2?"]
    assert all(t["assistant"].strip() for t in turns)
    assert turns[1]["usage"]["prompt_tokens"] > turns[0]["usage"]["prompt_tokens"]  # history is sent
    p = run(["chat", "--json", "--session", "s1", "--max-new-tokens", "8", "--greedy"], llmlab_home, stdin="bye\n")
    again = json.loads(p.stdout)
    assert again["usage"]["prompt_tokens"] > turns[1]["usage"]["prompt_tokens"]  # resumed with history
    plain = run(["chat", "--max-new-tokens", "8"], llmlab_home, stdin="hi\n")
    assert plain.stdout.strip()


def test_errors_go_to_stderr_with_exit_1(llmlab_home):
    p = run(["generate", "x", "--model", "no/such-model"], llmlab_home, check=False)
    assert p.returncode == 1 and p.stdout == "" and "models pull" in p.stderr
    # a flag value outside its range is a usage error (exit 2, like any bad flag), found before a model loads
    p = run(["generate", "x", "--top-p", "2"], llmlab_home, check=False)
    assert p.returncode == 2 and p.stdout == "" and "--top-p" in p.stderr and "(0, 1]" in p.stderr


def test_logs_purge(llmlab_home):
    run(["generate", "Hello", "--max-new-tokens", "2"], llmlab_home)
    p = run(["logs", "purge", "--json"], llmlab_home)
    assert json.loads(p.stdout)["deleted"] == 1
    assert json.loads(run(["logs", "--json"], llmlab_home).stdout)["runs"] == []


def test_an_argument_that_is_not_utf8_is_a_clear_error_not_a_crash():
    import os
    import subprocess
    import sys

    code = "import sys; from llmlab.cli.main import main; sys.argv[0] = 'llmlab'; main()"
    r = subprocess.run([sys.executable, "-c", code, b"generate", b"x\xed\xa0\x80y"], capture_output=True,
                       env={**os.environ, "PYTHONUTF8": "1"})
    assert r.returncode == 1 and b"argument 2 is not valid UTF-8 text" in r.stderr and b"Traceback" not in r.stderr

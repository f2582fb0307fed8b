"""The package's promises that are not about one module."""
import subprocess
import sys

HEAVY = ("torch", "transformers", "llama_cpp", "fastapi", "gradio", "uvicorn", "peft", "trl")


def test_import_llmlab_stays_light():
    code = "import sys, llmlab; print(','.join(m for m in %r if m in sys.modules))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import llmlab pulled in: {out}"


def test_cli_help_stays_light_and_lists_commands():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom llmlab.cli.main import cli\n"
            "r = CliRunner().invoke(cli, ['--help'])\nprint(r.output)\n"
            "print('HEAVY:' + ','.join(m for m in %r if m in sys.modules))" % (HEAVY,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "generate" in out and "chat" in out and "logs" in out
    assert out.strip().endswith("HEAVY:"), out

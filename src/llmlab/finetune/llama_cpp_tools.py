"""llama.cpp's own converter (``convert_hf_to_gguf.py``), run unchanged for merged-model export.

The installed llama-cpp-python wheel does not carry the converter, but its source
distribution does (``vendor/llama.cpp``), together with the ``gguf-py`` and ``conversion``
packages it imports, in the version matching the installed runtime. On first use the sdist
is fetched with pip into ``$LLMLAB_HOME/tools`` (only the converter files are kept); the
script then runs as a subprocess. Offline machines can point ``LLMLAB_LLAMA_CPP_DIR`` at a
llama.cpp checkout instead. Nothing of llama.cpp is vendored into llmlab.

Quantizing to k-quants (q4_k_m) uses ``llama_model_quantize`` of the installed runtime.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ..errors import BackendError, InvalidParameterError, MissingDependencyError

log = logging.getLogger(__name__)

ENV_DIR = "LLMLAB_LLAMA_CPP_DIR"
CONVERTER = "convert_hf_to_gguf.py"
KEEP = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "gguf-py/", "conversion/")
OUTTYPES = ("f16", "bf16", "f32", "q8_0")  # what the converter writes itself
QUANTIZE_FTYPES = {"q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M", "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
                   "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0", "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K"}


def llama_cpp_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama-cpp-python")
    except PackageNotFoundError:
        raise MissingDependencyError("llama-cpp-python", purpose="GGUF export") from None


def converter_dir(home: Path) -> Path:
    """A folder holding ``convert_hf_to_gguf.py`` and its packages, fetched on first use."""
    if os.environ.get(ENV_DIR):
        d = Path(os.environ[ENV_DIR]).expanduser()
        if not (d / CONVERTER).exists():
            raise BackendError(f"{ENV_DIR}={d} holds no {CONVERTER}; point it at a llama.cpp checkout")
        return d
    ver = llama_cpp_version()
    d = home / "tools" / f"llama.cpp-{ver}"
    if (d / CONVERTER).exists():
        return d
    log.warning("fetching llama.cpp's converter (llama-cpp-python %s source distribution, ~75 MB, once)", ver)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--disable-pip-version-check",
               f"llama-cpp-python=={ver}", "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        archives = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if proc.returncode != 0 or not archives:
            raise BackendError(
                f"could not download llama-cpp-python {ver}'s source distribution for the converter "
                f"({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'no archive'}). "
                f"Offline? Set {ENV_DIR} to a llama.cpp checkout (git clone https://github.com/ggml-org/llama.cpp)")
        _extract_converter(archives[0], d)
    return d


def _extract_converter(archive: Path, dest: Path) -> None:
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/vendor/llama.cpp/", 1)
            if len(parts) != 2 or not parts[1].startswith(KEEP) or not member.isfile():
                continue
            target = partial / parts[1]
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, target.open("wb") as dst:  # type: ignore[union-attr]
                shutil.copyfileobj(src, dst)
    if not (partial / CONVERTER).exists():
        raise BackendError(f"{archive.name} holds no vendor/llama.cpp/{CONVERTER}")
    shutil.rmtree(dest, ignore_errors=True)
    partial.rename(dest)


def convert_hf_folder(model_dir: Path, out_file: Path, outtype: str, home: Path) -> Path:
    """``convert_hf_to_gguf.py MODEL_DIR --outfile OUT --outtype TYPE`` in a subprocess."""
    if outtype not in OUTTYPES:
        raise InvalidParameterError(f"converter type {outtype!r}: valid types are {', '.join(OUTTYPES)}")
    tools = converter_dir(home)
    cmd = [sys.executable, str(tools / CONVERTER), str(model_dir), "--outfile", str(out_file), "--outtype", outtype]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("NO_LOCAL_GGUF", None)  # use the converter's own gguf-py, which matches it
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(tools))
    if proc.returncode != 0 or not out_file.exists():
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise BackendError(f"llama.cpp's converter failed on {model_dir}:\n{tail}")
    return out_file


def quantize(src: Path, dst: Path, quant: str, threads: int | None = None) -> Path:
    """Re-quantize a GGUF file with the installed llama.cpp (``llama_model_quantize``)."""
    import ctypes

    import llama_cpp

    if quant not in QUANTIZE_FTYPES:
        raise InvalidParameterError(f"quantization {quant!r}: valid values are {', '.join(QUANTIZE_FTYPES)}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANTIZE_FTYPES[quant])
    if threads:
        params.nthread = threads
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise BackendError(f"llama.cpp could not quantize {src} to {quant} (code {rc})")
    return dst

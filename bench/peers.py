"""The C++ peers the benches measure llmlab against: `llama-server` and `llama-bench`.

Built from the llama.cpp source that llama-cpp-python's source distribution vendors, at the
version of the installed binding, so the peers run the same ggml kernels as llmlab. The build
goes to a cache folder outside the repository and is reused on later runs:

    ${LLMLAB_PEERS_DIR:-${XDG_CACHE_HOME:-~/.cache}/llmlab/peers}/llama.cpp-<version>/bin/

    python bench/peers.py build [--json]     # build once (~10 min on 2 cores), print the paths
    python bench/peers.py where [--json]     # print the paths of an existing build, build nothing

The benches beside it `import peers` (a script's folder is first on sys.path), tests/remote
loads it by file path; both call `ensure_built()`: a missing compiler, cmake or
source raises `PeerBuildError` naming what is missing, so a bench can skip its peer rows.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

PACKAGE = "llama-cpp-python"
PINNED_VERSION = "0.3.36"  # pyproject.toml pins this; used when the binding is not installed
TARGETS = ("llama-server", "llama-bench")
# Portable like the binding's own wheel (Makefile CMAKE_ARGS): no -march=native, no network at
# build time (no curl/openssl, no prebuilt web UI download), only the two tools we run.
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAVA_BUILD=OFF",
)


class PeerBuildError(RuntimeError):
    """The peers could not be built; the message says what is missing and how to fix it."""


def binding_version() -> str:
    """The installed llama-cpp-python version (the pinned one when it is not installed)."""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return PINNED_VERSION


def cache_root() -> Path:
    """Where builds live: $LLMLAB_PEERS_DIR, else $XDG_CACHE_HOME/llmlab/peers (~/.cache by default)."""
    if os.environ.get("LLMLAB_PEERS_DIR"):
        return Path(os.environ["LLMLAB_PEERS_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "llmlab" / "peers"


def _paths(version: str) -> dict[str, Path]:
    root = cache_root() / f"llama.cpp-{version}"
    return {"root": root, "src": root / "src", "build": root / "build", "bin": root / "bin",
            "sdist_dir": cache_root() / "sdist"}


def find_built(version: str | None = None) -> dict | None:
    """The paths of a finished build, or None when there is none (builds nothing)."""
    version = version or binding_version()
    bin_dir = _paths(version)["bin"]
    exes = {t: bin_dir / t for t in TARGETS}
    if not all(p.is_file() and os.access(p, os.X_OK) for p in exes.values()):
        return None
    return {"llama_server": str(exes["llama-server"]), "llama_bench": str(exes["llama-bench"]),
            "version": version, "bin_dir": str(bin_dir)}


def _missing_tools() -> list[str]:
    missing = []
    if not (shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")):
        missing.append("a C++ compiler (apt-get install build-essential)")
    if not shutil.which("cmake"):
        missing.append("cmake (apt-get install cmake, or pip install cmake)")
    return missing


def _sdist(version: str, sdist_dir: Path, log) -> Path:
    name = f"llama_cpp_python-{version}.tar.gz"
    path = sdist_dir / name
    if path.is_file():
        return path
    sdist_dir.mkdir(parents=True, exist_ok=True)
    log(f"peers: downloading the {PACKAGE}=={version} source distribution (pip download) …")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           f"{PACKAGE}=={version}", "-d", str(sdist_dir)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0 or not path.is_file():
        raise PeerBuildError(
            f"could not get the {PACKAGE}=={version} source distribution ({' '.join(cmd)} failed: "
            f"{(r.stderr or r.stdout).strip().splitlines()[-1:] or ['no output']}). "
            f"Put {name} into {sdist_dir} by hand to build offline.")
    return path


def _extract_vendor(sdist: Path, dest: Path, log) -> None:
    """Extract only vendor/llama.cpp/ of the sdist into dest (atomically, via a temp folder)."""
    if (dest / "CMakeLists.txt").is_file():
        return
    log(f"peers: extracting vendor/llama.cpp from {sdist.name} …")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers()
                   if m.name.split("/")[1:3] == ["vendor", "llama.cpp"] and (m.isfile() or m.isdir() or m.issym())]
        if not members:
            raise PeerBuildError(f"{sdist} has no vendor/llama.cpp/ folder")
        kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(tmp, members=members, **kw)
    top = members[0].name.split("/")[0]
    shutil.rmtree(dest, ignore_errors=True)
    (tmp / top / "vendor" / "llama.cpp").rename(dest)
    shutil.rmtree(tmp, ignore_errors=True)


def build(version: str | None = None, jobs: int | None = None, log=print) -> dict:
    """Build llama-server and llama-bench into the cache (configure + two targets), return their paths."""
    version = version or binding_version()
    missing = _missing_tools()
    if missing:
        raise PeerBuildError("cannot build the llama.cpp peers: missing " + "; ".join(missing))
    p = _paths(version)
    _extract_vendor(_sdist(version, p["sdist_dir"], log), p["src"], log)
    jobs = jobs or os.cpu_count() or 2
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    configure = ["cmake", "-S", str(p["src"]), "-B", str(p["build"]), *gen, *CMAKE_FLAGS]
    compile_ = ["cmake", "--build", str(p["build"]), "--target", *TARGETS, "-j", str(jobs)]
    log_file = p["root"] / "build.log"
    log(f"peers: building {', '.join(TARGETS)} of llama.cpp (from {PACKAGE} {version}) in {p['build']} "
        f"with {jobs} jobs; log: {log_file}")
    with open(log_file, "w") as fh:
        for cmd in (configure, compile_):
            fh.write("$ " + " ".join(cmd) + "\n")
            fh.flush()
            r = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
            if r.returncode != 0:
                tail = log_file.read_text(errors="replace").splitlines()[-15:]
                raise PeerBuildError(f"`{' '.join(cmd[:3])} …` failed (exit {r.returncode}); last lines of "
                                     f"{log_file}:\n" + "\n".join(tail))
    p["bin"].mkdir(parents=True, exist_ok=True)
    for t in TARGETS:
        exe = p["build"] / "bin" / t
        if not exe.is_file():
            raise PeerBuildError(f"the build finished but {exe} is missing; see {log_file}")
        shutil.copy2(exe, p["bin"] / t)  # the copy is the marker that a build is complete
    found = find_built(version)
    assert found is not None
    return found


def ensure_built(version: str | None = None, log=print) -> dict:
    """The peers' paths, building them first when the cache has none.

    Returns {"llama_server": path, "llama_bench": path, "version": ..., "bin_dir": ...};
    raises PeerBuildError (what is missing) when they cannot be built.
    """
    found = find_built(version)
    if found is not None:
        log(f"peers: using the cached build in {found['bin_dir']}")
        return found
    return build(version, log=log)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["build", "where"])
    ap.add_argument("--json", action="store_true", help="print the paths as one JSON object")
    ap.add_argument("--version", default=None, help=f"{PACKAGE} version (default: the installed one)")
    args = ap.parse_args(argv)
    log = (lambda msg: print(msg, file=sys.stderr)) if args.json else print
    try:
        found = ensure_built(args.version, log=log) if args.command == "build" else find_built(args.version)
    except PeerBuildError as e:
        print(f"peers: {e}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": str(e)}))
        return 1
    if found is None:
        print(f"peers: no build in {_paths(args.version or binding_version())['bin']}; run "
              "`python bench/peers.py build`", file=sys.stderr)
        return 1
    print(json.dumps(found) if args.json else "\n".join(f"{k}: {v}" for k, v in found.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

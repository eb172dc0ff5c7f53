"""One precompiled torch/extension.h for every load_inline C++ build with the same flags.

Half of a `load_inline` C++ build is the compiler parsing torch/extension.h (on the
2-core machine: 22.5 s without a precompiled header, 11.0 s with one). That part never
changes between candidates, so the candidate worker wraps `load_inline`: a C++-only build
gets an include directory holding a copy of torch/extension.h and, beside it, a
precompiled header built once per toolchain and flags. The compiler itself decides
whether the header is usable (it silently parses the real one otherwise), and a header
it would not use is found out once, by a probe compile, and never built again.

torch's own `use_pch=True` is no use here: it writes the header into torch's install
directory, and every `load_inline` without it deletes that header again.

Trust: the directory is shared by every candidate, so only the trusted side writes it. A
confined candidate worker (sandbox.confine) may read it and nothing more; the judge builds
the header for torch's default flags (`prebuild`) before it loads a candidate that uses
`load_inline`. A candidate whose own flags need another header builds without one (an
unconfined worker, with confinement turned off, still builds and shares it as before).
"""

from __future__ import annotations

import ast
import fcntl
import functools
import hashlib
import inspect
import os
import re
import shutil
import subprocess
import threading
import sys
import sysconfig
from pathlib import Path
from typing import Any, Callable

ENV = "KERNELWRIGHT_PCH_DIR"
# The include directory holding a precompiled Inductor C++ prelude for the candidate being
# imported (`inductor_include`), set by the candidate's worker from the judge's load request.
INDUCTOR_ENV = "KERNELWRIGHT_CPP_PREFIX_PCH"
EXTENSION_H = "torch/extension.h"
CPP_PREFIX_H = "torch/csrc/inductor/cpp_prefix.h"
_BUILD_TIMEOUT_S = 600


# Where Inductor's own precompiled cpp_prefix.h goes (share_inductor_headers); set by the judge
# for the trusted processes that run torch.compile: the reference worker and the capture child.
INDUCTOR_HEADERS_ENV = "KERNELWRIGHT_INDUCTOR_HEADERS"


def share_inductor_headers(directory: str | Path | None = None) -> None:
    """Make this process's Inductor keep its precompiled headers in `directory` (default:
    $KERNELWRIGHT_INDUCTOR_HEADERS; neither: nothing changes).

    Inductor precompiles cpp_prefix.h for its C++ kernels under tempfile.gettempdir(), not
    under TORCHINDUCTOR_CACHE_DIR. A worker's TMPDIR is its own, so every CPU verdict with the
    torch.compile baseline built that header again: 4-5 s of cc1plus on the 2-core machine,
    half of the baseline's compile. The header's name is a hash of its flags, the preprocessed
    header and the compiler, so one directory serves every process with the same toolchain.
    Only trusted processes call this; the directory is never one a candidate can write. A torch
    without the module attributes keeps its default (slower, never wrong).
    """
    directory = directory or os.environ.get(INDUCTOR_HEADERS_ENV)
    if not directory:
        return
    from torch._inductor import codecache

    if not hasattr(codecache, "_HEADER_DIR"):
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    codecache._HEADER_DIR = str(directory)
    codecache._HEADER_LOCK_DIR = os.path.join(str(directory), "locks")


def install(root: str | Path) -> None:
    """Wrap torch.utils.cpp_extension.load_inline in this process (before the candidate imports it)."""
    import torch.utils.cpp_extension as ext

    original = ext.load_inline
    if getattr(original, "__wrapped_by_kernelwright__", False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def load_inline(*args: Any, **kwargs: Any) -> Any:
        try:
            call = dict(signature.bind_partial(*args, **kwargs).arguments)
            include = _include_for(Path(root), call)
        except Exception:  # noqa: BLE001 - a missing header only costs time
            include = None
        if include is None:
            return original(*args, **kwargs)
        call["extra_include_paths"] = [include, *(call.get("extra_include_paths") or [])]
        return original(**call)

    load_inline.__wrapped_by_kernelwright__ = True  # type: ignore[attr-defined]
    ext.load_inline = load_inline


# Flags the trusted side compiles the shared header with when a candidate asks for them: only
# optimisation, language and warning switches and plain macros. Anything else (-fplugin=,
# -B, -wrapper, include paths) would let a candidate run code in, or plant code through, the
# judge's own compile.
_SAFE_FLAG = re.compile(r"-(O[0-3sz]?|march=native|mtune=native|ffast-math|fopenmp|funroll-loops|"
                        r"fno-math-errno|std=c\+\+(17|20|2a)|D[A-Za-z_][A-Za-z0-9_]*(=[A-Za-z0-9_.]*)?|"
                        r"w|g|Wall|Wextra|Wno-[a-z-]+)")


def declared_builds(source: str) -> list[tuple[list[str], str]]:
    """(extra_cflags, "cpu"|"cuda") of every `load_inline` call in `source` whose arguments are
    literals the judge may build a header for (safe flags, no include paths); read, never run."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found: list[tuple[list[str], str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name != "load_inline":
            continue
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        try:
            flags = ast.literal_eval(kw["extra_cflags"]) if "extra_cflags" in kw else []
            paths = ast.literal_eval(kw["extra_include_paths"]) if "extra_include_paths" in kw else []
            with_cuda = ast.literal_eval(kw["with_cuda"]) if "with_cuda" in kw else None
        except ValueError:
            continue
        if not isinstance(flags, (list, tuple)) or paths or \
                not all(isinstance(f, str) and _SAFE_FLAG.fullmatch(f.strip()) for f in flags):
            continue
        cuda = ("cuda_sources" in kw and not (isinstance(kw["cuda_sources"], ast.Constant)
                                               and kw["cuda_sources"].value is None)) if with_cuda is None else bool(with_cuda)
        found.append(([f.strip() for f in flags], "cuda" if cuda else "cpu"))
    return found


def prebuild(root: str | Path, device: str, source: str = "") -> None:
    """Trusted side: build the headers a candidate's builds will look for, once per flags.

    Torch's default flags (C++, and CUDA's on CUDA), and the literal, allow-listed flags of
    each `load_inline` call in `source`.
    """
    wanted = [([], kind) for kind in (("cpu", "cuda") if device.startswith("cuda") else ("cpu",))]
    wanted += [(flags, kind) for flags, kind in declared_builds(source)
               if kind == "cpu" or device.startswith("cuda")]
    for flags, kind in wanted:
        try:
            ensure(Path(root), header_flags(flags, [], kind))
        except Exception:  # noqa: BLE001 - without a header a build only takes longer
            continue


# Inductor's C++ flags (`_IND_CFLAGS` of a candidate the Inductor proposer wrote) the judge
# builds a header for: optimisation, ISA, language, floating-point and warning switches and
# plain macros, nothing with a path or a plugin in it.
_SAFE_INDUCTOR_FLAG = re.compile(
    r"-(O[0-3sz]?|march=native|mtune=native|m(no-)?[a-z0-9][a-z0-9.-]*|"
    # On/off switches only (no `=`: nothing that names a file or a plugin), none that writes files.
    r"f(?!(no-)?(dump|profile|auto-profile|plugin|record|save|stack-usage|callgraph|diagnostics|debug))"
    r"(no-)?[a-z][a-z0-9-]*|fexcess-precision=(fast|standard)|ffp-contract=(off|on|fast)|"
    r"fvisibility=(hidden|default)|std=(c|gnu)\+\+(14|17|20|2a)|D[A-Za-z_][A-Za-z0-9_]*(=[A-Za-z0-9_.]*)?|"
    r"U[A-Za-z_][A-Za-z0-9_]*|w|g|pthread|Wall|Wextra|W(no-)?[a-z][a-z0-9-]*|Werror=[a-z][a-z0-9-]*)")


def inductor_flags(source: str) -> list[str] | None:
    """The literal `_IND_CFLAGS` list of an Inductor-proposed candidate, when every flag is one
    the judge may compile a header with; None otherwise. Read, never run."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_IND_CFLAGS"
                                                for t in node.targets):
            try:
                flags = ast.literal_eval(node.value)
            except ValueError:
                return None
            if isinstance(flags, (list, tuple)) and all(isinstance(f, str) and _SAFE_INDUCTOR_FLAG.fullmatch(f)
                                                        for f in flags):
                return list(flags)
            return None
    return None


def inductor_include(root: str | Path, source: str, build: bool = True, background: bool = False) -> str | None:
    """Trusted side: the include directory holding Inductor's C++ prelude (cpp_prefix.h)
    precompiled with the flags an Inductor-proposed candidate builds its kernels with, built
    once per flags; None when the candidate is not one or the compiler would not use it.

    Parsing that prelude is most of such a build: on the 2-core machine 1.63 s without the
    header, 0.59 s with it. The candidate's build (propose/inductor/templates, `_ind_build`)
    puts this directory first on its include path when the worker names it (INDUCTOR_ENV).
    `build` False: only a header built already (a build in the background must not run a
    compiler the quiet periods do not know of). `background`: the compiler runs as background
    work, stopped while anything is timed.
    """
    flags = inductor_flags(source)
    if flags is None:
        return None
    import torch

    torch_include = os.path.join(os.path.dirname(torch.__file__), "include")
    try:
        return ensure(Path(root), [*flags, "-fPIC", f"-I{torch_include}"], CPP_PREFIX_H, build, background)
    except Exception:  # noqa: BLE001 - without a header the build only takes longer
        return None


_soon: dict[str, threading.Thread] = {}  # background builds of Inductor's prelude, by root and source's flags
_soon_lock = threading.Lock()


def inductor_include_soon(root: str | Path, source: str) -> str | None:
    """Like `inductor_include`, but never waits for the build: the header's directory when it is
    built already, else None, with the header then built in a background thread (once per flags)
    for the candidates after this one.

    A search's first Inductor candidate would otherwise wait for the header (4.8 s on the 2-core
    machine) before a build the header saves about 1.1 s of; it builds without it instead, and
    the compiler runs in the background, stopped while anything is timed (sandbox.quiet).
    """
    built = inductor_include(root, source, build=False)
    flags = inductor_flags(source)
    if built is not None or flags is None:
        return built
    key = f"{root}\0{flags}"
    with _soon_lock:
        if key not in _soon:
            # Not a daemon: a process that ends first (a lone verify) waits for the header at exit,
            # so that it is built once, never started and abandoned by every cold process.
            t = threading.Thread(target=inductor_include, args=(root, source), kwargs={"background": True},
                                 name="kw-pch", daemon=False)
            _soon[key] = t
            t.start()
    return None


def _include_for(root: Path, call: dict[str, Any]) -> str | None:
    """The include directory to add for this load_inline call, or None (no usable header).

    In a CUDA build the header serves the C++ sources (the torch binding), compiled by the
    host compiler with CUDA's include paths added; nvcc never reads a .gch (it preprocesses
    with -E). Without implicit headers a source that does not start with the include simply
    parses the real header: a precompiled one is only ever used as a file's first include.
    """
    if call.get("sycl_sources") or call.get("with_sycl") or call.get("use_pch"):
        return None
    cuda = bool(call.get("cuda_sources")) if call.get("with_cuda") is None else bool(call.get("with_cuda"))
    flags = header_flags(list(call.get("extra_cflags") or []), list(call.get("extra_include_paths") or []),
                         "cuda" if cuda else "cpu")
    return ensure(root, flags)


def header_flags(extra_cflags: list[str], extra_include_paths: list[str], device: str = "cpu") -> list[str]:
    """The flags torch compiles a C++ extension's C++ sources with, less the per-extension name."""
    from torch.utils.cpp_extension import include_paths

    system = list(include_paths(device))
    py_include = sysconfig.get_path("include", scheme="posix_prefix")
    if py_include:
        system.append(py_include)
    flags = ["-DTORCH_API_INCLUDE_EXTENSION_H"]
    flags += [f"-I{os.path.abspath(p)}" for p in extra_include_paths]
    for path in system:
        flags += ["-isystem", path]
    return flags + ["-fPIC", _std_flag()] + [f.strip() for f in extra_cflags]


@functools.lru_cache(maxsize=1)
def _std_flag() -> str:
    import torch.utils.cpp_extension as ext

    try:
        source = inspect.getsource(ext._write_ninja_file_to_build_library)
    except (AttributeError, OSError, TypeError):
        return "-std=c++17"
    return "-std=c++20" if "'-std=c++20'" in source else "-std=c++17"


def _compiler() -> str:
    return os.environ.get("CXX", "c++")


def ensure(root: Path, flags: list[str], header: str = EXTENSION_H, build: bool = True,
           background: bool = False) -> str | None:
    """Build (once, under a lock) and check `header` precompiled for these flags; its include
    directory or None (with `build` False, None unless it was built already). `background`: the
    compiler is background work (sandbox.quiet), stopped while anything is timed."""
    import torch

    parts = [torch.__version__, sys.version, _compiler_id(), *flags] + ([header] if header != EXTENSION_H else [])
    key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]
    final = root / key
    gch = Path(header + ".gch")
    if (final / gch).exists():
        return str(final)
    if (root / f"{key}.unusable").exists() or not build:
        return None
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if this process dies
        if (final / gch).exists():
            return str(final)
        if (root / f"{key}.unusable").exists():
            return None
        stage = root / f"{key}.stage-{os.getpid()}"
        shutil.rmtree(stage, ignore_errors=True)
        try:
            usable = _build(stage, flags, header, background)
            if usable:
                os.replace(stage, final)  # whole directory at once: readers see all or nothing
            else:
                (root / f"{key}.unusable").write_text("the compiler would not use the header\n")
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return str(final) if usable else None


def _build(stage: Path, flags: list[str], header_name: str = EXTENSION_H, background: bool = False) -> bool:
    """Precompile the header into `stage`; True when a probe compile actually uses it."""
    from torch.utils.cpp_extension import include_paths

    header = stage / header_name
    header.parent.mkdir(parents=True)
    original = next(Path(p) / header_name for p in include_paths("cpu") if (Path(p) / header_name).exists())
    shutil.copyfile(original, header)
    run: Callable[..., subprocess.CompletedProcess[str]] = _run_in_background if background else functools.partial(
        subprocess.run, capture_output=True, text=True, timeout=_BUILD_TIMEOUT_S)
    built = run([_compiler(), "-x", "c++-header", str(header), "-o", f"{header}.gch", *flags])
    if built.returncode != 0:
        return False
    probe = stage / "probe.cpp"
    probe.write_text(f"#include <{header_name}>\nint kernelwright_probe;\n")
    # -H lists every header read; a precompiled one is marked "!". The probe carries the
    # per-extension macro that real builds add, so it fails exactly when they would.
    used = run([_compiler(), "-H", "-Winvalid-pch", "-DTORCH_EXTENSION_NAME=kernelwright_probe",
                f"-I{stage}", *flags, "-fsyntax-only", str(probe)])
    probe.unlink()
    return used.returncode == 0 and any(line.startswith("!") and line.rstrip().endswith(".gch")
                                        for line in used.stderr.splitlines())


def _run_in_background(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a compiler as background work: its own process group, stopped while anything is timed."""
    from kernelwright.sandbox import quiet

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    with quiet.background(quiet.ProcessGroup(proc.pid)):
        try:
            out, err = proc.communicate(timeout=_BUILD_TIMEOUT_S)
        except BaseException:
            proc.kill()
            proc.communicate()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@functools.lru_cache(maxsize=1)
def _compiler_id() -> str:
    try:
        return subprocess.run([_compiler(), "--version"], capture_output=True, text=True,
                              timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return _compiler()

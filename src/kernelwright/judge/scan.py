"""A static scan of a candidate's source: suspicious constructs, reported as findings.

A finding is an observation, never a rejection; the dynamic checks decide. The scan
points the report at code that *could* cheat (side threads and streams, reaching
into the judge, patched modules, result caches, timers) in the Python source, via
`ast`, and in C/C++/CUDA embedded in its string literals, via regexes. An adversary
can always hide from a static scan (macros, strings built at run time), so it is a
hint, not a defense. It never executes the candidate and never raises.
"""

from __future__ import annotations

import ast
import bisect
import builtins
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ScanFinding:
    """One suspicious construct: a stable rule id, a 1-based line, one short sentence."""

    rule: str
    line: int
    detail: str


_NOT_CALLED = r"(?<![\w.>:])"  # a free function, not a method (x.write) or a qualified name (std::x)
_DECL = (r"(?:(?:unsigned|signed|long|short)\s+)*[A-Za-z_][\w:]{0,80}(?:\s*<[^;(){}\n]{0,200}>)?"
         r"[ \t*&]+(?!const\b)[A-Za-z_]\w{0,80}\s*(?:\[[^\]\n]{0,80}\]\s*)*")

# rule -> (what it does, why that matters, what finds it). Python rules list dotted names, import
# aliases resolved: the longest listed prefix wins, "os.exec*" matches any continuation. cpp_ rules
# hold a regex run over embedded native code. "" or extra hits come from the structural checks below.
_RULES: dict[str, tuple[str, str, str]] = {
    "syntax": ("does not parse", "the candidate cannot be imported", ""),
    "scan_error": ("could not be fully scanned", "rely on the dynamic checks", ""),
    "thread": ("starts a thread", "work may run outside the timed region",
               "threading _thread multiprocessing torch.multiprocessing concurrent asyncio"),
    "stream": ("uses a side CUDA stream", "kernels may run outside the timed stream",
               "torch.cuda.Stream torch.cuda.stream torch.cuda.streams torch.cuda.set_stream "
               "torch.cuda.ExternalStream torch.cuda.StreamContext torch.Stream"),
    "gc": ("walks the garbage collector", "can reach the judge's objects, such as reference outputs", "gc"),
    "inspect": ("inspects frames or interpreter state", "can read the judge's locals and modules",
                "inspect sys._getframe sys._current_frames sys.settrace sys.setprofile sys.addaudithook "
                "sys.modules threading.settrace threading.setprofile traceback.extract_stack "
                "traceback.walk_stack globals vars locals"),
    "monkeypatch": ("patches a module or object", "can alter timing, comparison or the judge itself",
                    "unittest.mock mock"),
    "exit": ("exits or kills the process", "can cut a judgement short",
             "os._exit os.abort os.kill os.killpg sys.exit exit quit SystemExit"),
    "signal": ("handles or sends signals", "can interfere with timeouts", "signal faulthandler"),
    "atexit": ("registers exit or finalizer hooks", "code may run after the measurement",
               "atexit weakref.finalize"),
    "file_write": ("writes, deletes or reopens files", "can persist results or tamper with the judge",
                   "os.remove os.unlink os.rename os.replace os.rmdir os.removedirs os.truncate os.write "
                   "os.open os.fdopen os.dup os.dup2 os.close shutil torch.save numpy.save numpy.savez"),
    "subprocess": ("spawns a process", "work may run outside the sandboxed, timed region",
                   "subprocess os.system os.popen os.fork os.forkpty os.register_at_fork os.exec* os.spawn* "
                   "os.posix_spawn* pty"),
    "ctypes": ("loads native code through ctypes/cffi/mmap", "can poke raw memory outside the build",
               "ctypes _ctypes cffi mmap torch.ops.load_library torch.classes.load_library"),
    "network": ("uses the network", "can fetch precomputed results",
                "socket ssl urllib urllib3 http requests httpx aiohttp ftplib smtplib xmlrpc"),
    "dynamic_code": ("runs dynamically built code", "hides what actually runs from review",
                     "importlib __import__ exec eval compile runpy marshal pickle dill code codeop "
                     "types.CodeType types.FunctionType"),
    "env": ("reads or changes environment variables", "can detect or steer the judge",
            "os.environ os.environb os.getenv os.getenvb os.putenv os.unsetenv"),
    "tensor_subclass": ("makes a tensor subclass", "outputs may lie about their values or defer work",
                        "torch.Tensor._make_subclass torch.Tensor._make_wrapper_subclass "
                        "torch.Tensor.as_subclass torch._C._TensorBase torch._C.TensorBase"),
    "torch_function": ("intercepts torch dispatch", "can change how the judge's own tensor ops behave",
                       "torch.overrides torch.utils._python_dispatch torch._C._disabled_torch_function_impl "
                       "torch._C.DisableTorchFunction torch._C.DisableTorchFunctionSubclass "
                       "torch.library.Library torch.library.impl torch._C._dispatch*"),
    "cuda_graph": ("captures CUDA graphs", "replays may skip work or return stale results",
                   "torch.cuda.CUDAGraph torch.cuda.graph torch.cuda.graphs torch.cuda.make_graphed_callables "
                   "torch.cuda.graph_pool_handle"),
    "memo_cache": ("may cache results between calls", "repeated timed calls may skip the work",
                   "functools.lru_cache functools.cache functools.cached_property"),
    "data_ptr": ("reads tensor addresses", "a typical key of a result cache", ""),
    "global_flag": ("changes global torch settings", "also changes the reference's numerics or speed",
                    "torch.set_num_threads torch.set_num_interop_threads torch.set_float32_matmul_precision "
                    "torch.set_flush_denormal torch.use_deterministic_algorithms torch.set_default_dtype "
                    "torch.set_default_tensor_type torch.set_default_device torch.set_grad_enabled "
                    "torch.autograd.set_grad_enabled torch._C._set*"),
    "timer": ("uses timers", "can detect or game the measurement",
              "time timeit torch.cuda.Event torch.Event torch.cuda._sleep triton.testing "
              "torch.utils.benchmark"),
    "seed": ("touches random seeds or RNG state", "can predict or replay the judge's inputs",
             "torch.manual_seed torch.seed torch.random torch.set_rng_state torch.get_rng_state "
             "torch.cuda.manual_seed torch.cuda.manual_seed_all torch.cuda.seed torch.cuda.seed_all "
             "torch.cuda.set_rng_state torch.cuda.set_rng_state_all torch.cuda.get_rng_state "
             "numpy.random.seed numpy.random.set_state numpy.random.get_state random.seed random.setstate"),
    "harness": ("touches the judge's own package", "can tamper with the measurement", "kernelwright"),
    "proc": ("reaches into /proc", "can read other processes' memory or environment", ""),
    "cpp_thread": ("starts host threads in native code", "work may run outside the timed region",
                   r"\bstd::j?thread\b(?!\s*::\s*hardware_concurrency)|\bpthread_create\b|\bstd::async\b"
                   rf"|\bboost::thread\b|{_NOT_CALLED}v?fork\s*\("),
    "cpp_subprocess": ("spawns a process in native code", "work may run outside the timed region",
                       rf"{_NOT_CALLED}(?:system|popen|execv\w*|execl\w*|posix_spawn\w*)\s*\("
                       r"|\bstd::system\s*\("),
    "cpp_stream": ("uses a side CUDA stream in native code", "kernels may run outside the timed stream",
                   r"\bcudaStreamCreate\w*|\bcudaStreamPerThread\b|\bcudaStreamNonBlocking\b"
                   r"|\bcuStreamCreate\w*|\bgetStreamFromPool\b|\bgetStreamFromExternal\b"
                   r"|\bsetCurrentCUDAStream\b|\bCU_STREAM_NON_BLOCKING\b"),
    "cpp_host_alloc": ("allocates pinned or managed memory", "results may be produced or kept off the clock",
                       r"\bcudaMallocHost\b|\bcudaHostAlloc\b|\bcudaMallocManaged\b|\bcudaHostRegister\b"
                       r"|\bcuMemAllocHost\w*|\bcuMemHostAlloc\b|\bcuMemAllocManaged\b|\b__managed__\b"),
    # Static locals outlive the call; const/constexpr values and static functions hold no state.
    "cpp_static": ("keeps static or global state in native code", "can cache results between calls",
                   r"\bstatic\s+(?:(?:thread_local|volatile|mutable|__device__)\s+)*"
                   r"(?:const\s+(?=[\w:]+\s*\*))?"
                   rf"(?!(?:const|constexpr|inline|void|struct|class|enum|union|__\w+__)\b){_DECL}[;={{]"),
    "cpp_graph": ("uses CUDA graphs in native code", "replays may skip work or return stale results",
                  r"\bcudaGraph\w*|\bcudaStreamBeginCapture\w*|\bcuGraph\w*|\bCUDAGraph\b"),
    "cpp_env": ("reads the environment in native code", "can detect or steer the judge",
                r"\b(?:secure_)?getenv\s*\(|\b(?:setenv|putenv|unsetenv)\s*\(|\benviron\b"),
    "cpp_exit": ("exits or kills the process from native code", "can cut a judgement short",
                 rf"{_NOT_CALLED}(?:_exit|_Exit|exit|abort|quick_exit|kill)\s*\("
                 r"|\bstd::(?:exit|abort|terminate|quick_exit|_Exit)\s*\("),
    "cpp_file": ("does file I/O in native code", "can persist results or tamper with the judge",
                 rf"\bf?open\s*\(|\bfreopen\s*\(|\b[io]?fstream\b|\bfwrite\s*\(|{_NOT_CALLED}(?:write|pwrite"
                 r"|unlink|rename|creat)\s*\("),
    "cpp_dlopen": ("loads libraries dynamically in native code", "hides what actually runs",
                   r"\bdl(?:open|sym|mopen)\b|\bLoadLibrary\w*"),
    "cpp_l2_persist": ("sets up persisting L2 cache", "data may stay cached across timed calls",
                       r"\bcudaLimitPersistingL2CacheSize\b|\baccessPolicyWindow\b"
                       r"|\bcudaAccessPropertyPersisting\b|\bcudaStreamAttributeAccessPolicyWindow\b"
                       r"|\bCU_LIMIT_PERSISTING_L2_CACHE_SIZE\b"),
    "cpp_timer": ("reads clocks in native code", "can detect or game the measurement",
                  r"%%?globaltimer\w*|%%?clock(?:64)?\b|\bclock64\s*\(|\bclock\s*\(\s*\)|\bstd::chrono\b"
                  r"|\bclock_gettime\b|\bgettimeofday\b|\b__rdtsc\b|\bcudaEventElapsedTime\b"),
}
_PY = {r: v[2].split() for r, v in _RULES.items() if not r.startswith("cpp_")}
_EXACT = {p: r for r, ps in _PY.items() for p in ps if not p.endswith("*")}
_STAR = [(p[:-1], r) for r, ps in _PY.items() for p in ps if p.endswith("*")]
_NATIVE = [(r, re.compile(v[2])) for r, v in _RULES.items() if r.startswith("cpp_")]
# A mutable variable declared at file scope (brace and paren depth 0) persists between calls too.
_GLOBAL_VAR = re.compile(r"^[ \t]*(?:(?:static|__device__|thread_local|volatile)\s+)*"
                         r"(?!(?:const|constexpr|return|using|typedef|namespace|template|extern|struct|class"
                         rf"|union|enum|friend|operator|goto|else|if|for|while|do|switch|case|delete|new)\b)"
                         rf"{_DECL}[;=]", re.M)
# Attribute names suspicious on any object, whatever it is bound to.
_ATTRS = {a: r for r, names in {
    "inspect": "f_back f_locals f_globals f_builtins f_code tb_frame gi_frame cr_frame ag_frame",
    "data_ptr": "data_ptr _cdata", "torch_function": "__torch_function__ __torch_dispatch__",
    "file_write": "write_text write_bytes unlink rmdir",
    "tensor_subclass": "as_subclass _make_subclass _make_wrapper_subclass"}.items() for a in names.split()}
# Names treated as modules even when not imported under that name (nn, F are conventions).
_MODULE_ROOTS = frozenset("torch time os sys builtins __builtins__ numpy np triton tl kernelwright "
                          "math random F nn functools json hmac gc inspect types operator".split())
_PATCH_DUNDERS = frozenset("__class__ __code__ __globals__ __builtins__ __dict__ __defaults__ "
                           "__kwdefaults__ __bases__".split())
_BUILTINS = {name: name for name in [*dir(builtins), "exit", "quit"]}
_TENSOR_BASES = frozenset("torch.Tensor torch._C._TensorBase torch._C.TensorBase torch.nn.Parameter "
                          "torch.nn.parameter.Parameter".split())
_CONTAINERS = frozenset("dict collections.defaultdict collections.OrderedDict collections.Counter "
                        "weakref.WeakKeyDictionary weakref.WeakValueDictionary".split())
_MODE = re.compile(r"[rwxabtU+]{1,4}")
_NATIVE_HINT = re.compile(r'#\s*include|__global__|__device__|\b(?:torch|at|c10|std)::|extern\s+"C"'
                          r'|cudaMalloc|PYBIND11_MODULE|TORCH_LIBRARY|%%?globaltimer|%%?clock')
# String and char literals are matched only so that comment markers inside them are skipped.
_C_TOKENS = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|//[^\n]*|/\*[\s\S]*?(?:\*/|\Z)')


# --- embedded C/C++/CUDA -------------------------------------------------------------
def _blank_comments(code: str) -> str:
    """Comments replaced by spaces (newlines kept), so offsets and lines stay put."""
    def blank(m: re.Match) -> str:
        s = m.group(0)
        return s if s[0] in "\"'" else re.sub(r"[^\n]", " ", s)
    return _C_TOKENS.sub(blank, code)


def _scan_native(code: str, first: int, last: int) -> list[tuple[str, int, str]]:
    """(rule, line, matched text) for embedded native code starting at Python line `first`."""
    code = _blank_comments(code)
    newlines = [m.start() for m in re.finditer("\n", code)]
    depth, depths = 0, []
    for text in code.split("\n"):
        depths.append(depth)
        depth += text.count("{") + text.count("(") - text.count("}") - text.count(")")
    line = lambda pos: min(first + bisect.bisect_left(newlines, pos), last)  # noqa: E731
    hits = [(rule, line(m.start()), m.group(0)) for rule, rx in _NATIVE for m in rx.finditer(code)]
    hits += [("cpp_static", line(m.start()), m.group(0)) for m in _GLOBAL_VAR.finditer(code)
             if depths[bisect.bisect_left(newlines, m.start())] == 0]
    return hits


# --- Python --------------------------------------------------------------------------
def _chain(node: ast.AST) -> tuple[str, list[str]] | None:
    """(root name, attribute names) of a plain `a.b.c` chain, else None; iterative on purpose."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return (node.id, parts[::-1]) if isinstance(node, ast.Name) else None


def _root(node: ast.AST) -> str | None:
    """The Name at the bottom of attribute, subscript and call chains (`sys.modules[k].x` -> sys)."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _match(name: str) -> str | None:
    """The rule of a resolved dotted name: the longest listed prefix, then the `*` patterns."""
    name = name[len("builtins."):] if name.startswith("builtins.") else name
    parts = name.split(".", 8)[:8]
    for i in range(len(parts), 0, -1):
        if (rule := _EXACT.get(".".join(parts[:i]))) is not None:
            return rule
    return next((rule for prefix, rule in _STAR if name.startswith(prefix)), None)


def _str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


class _Scan:
    """One pass over a parsed module; `hits` gathers (rule, line, name) as it goes."""

    def __init__(self, tree: ast.Module, hits: list[tuple[str, int, str]]) -> None:
        self.hits = hits
        self.aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:  # `import a.b` binds a; `import a.b as c` binds c to a.b
                    top = a.name.split(".")[0]
                    self.aliases[a.asname or top] = a.name if a.asname else top
            elif isinstance(node, ast.ImportFrom):
                mod = "." * node.level + (node.module or "")
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{mod}.{a.name}"

    def resolve(self, node: ast.AST) -> str | None:
        """Dotted name through import aliases and builtins; None for local variables."""
        if (chain := _chain(node)) is None:
            return None
        root, parts = chain
        base = self.aliases.get(root) or ("builtins" if root == "__builtins__" else _BUILTINS.get(root))
        return ".".join([base, *parts]) if base else None

    def module_like(self, node: ast.AST) -> bool:
        return (root := _root(node)) is not None and (root in self.aliases or root in _MODULE_ROOTS)

    def run(self, tree: ast.Module) -> None:
        inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        # f-string pieces are scanned as one text: before 3.12 the pieces carry the f-string's position.
        pieces = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
        for node in ast.walk(tree):
            line = getattr(node, "lineno", 1)
            if isinstance(node, ast.Import):
                self.hits += [(r, line, a.name) for a in node.names if (r := _match(a.name))]
            elif isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                self.hits += [(r, line, f"{mod}.{a.name}") for a in node.names
                              if (r := _match(f"{mod}.{a.name}") or _match(mod))]
            elif isinstance(node, (ast.Name, ast.Attribute)):
                if isinstance(node, ast.Attribute) and node.attr in _ATTRS:
                    self.hits.append((_ATTRS[node.attr], line, "." + node.attr))
                if id(node) not in inner and (name := self.resolve(node)) and (rule := _match(name)):
                    self.hits.append((rule, line, name))
            elif isinstance(node, ast.Call):
                self.call(node, line)
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
                for target in getattr(node, "targets", None) or [node.target]:
                    self.target(target, line)
            elif isinstance(node, ast.ClassDef):
                self.hits += [("tensor_subclass", line, n) for b in node.bases
                              if (n := self.resolve(b)) in _TENSOR_BASES]
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.name in ("__torch_function__", "__torch_dispatch__"):
                    self.hits.append(("torch_function", line, node.name))
                elif node.name == "__del__":
                    self.hits.append(("atexit", line, "__del__"))
            elif isinstance(node, ast.Global):
                self.hits.append(("memo_cache", line, "global " + ", ".join(node.names)))
            elif isinstance(node, ast.JoinedStr):
                text = "".join(_str(v) or "0" for v in node.values)
                self.string(text, line, getattr(node, "end_lineno", line) or line)
            elif (text := _str(node)) is not None and id(node) not in pieces:
                self.string(text, line, getattr(node, "end_lineno", line) or line)
        self.caches(tree)

    def call(self, node: ast.Call, line: int) -> None:
        """Calls whose meaning depends on their arguments, or on a method name alone."""
        f, args = self.resolve(node.func) or "", node.args
        fname = getattr(node.func, "attr", None) or getattr(node.func, "id", "")
        if f in ("setattr", "delattr", "object.__setattr__", "builtins.setattr", "builtins.delattr") and args:
            if self.module_like(args[0]) or (len(args) > 1 and _str(args[1]) in _PATCH_DUNDERS):
                self.hits.append(("monkeypatch", line, f))
        elif f in ("getattr", "builtins.getattr") and len(args) > 1 and _str(args[1]):
            # getattr(os, "system") is os.system spelled differently.
            if (base := self.resolve(args[0])) and (rule := _match(f"{base}.{_str(args[1])}")):
                self.hits.append((rule, line, f"{base}.{_str(args[1])}"))
        elif f in ("id", "builtins.id"):
            self.hits.append(("memo_cache", line, "id()"))
        elif f.startswith("torch.backends.") and not fname.startswith("is_") and fname != "version":
            self.hits.append(("global_flag", line, f))
        if fname in ("Stream", "ExternalStream"):  # any library's stream, cupy's included
            self.hits.append(("stream", line, f or fname))
        if fname == "open":
            if f in ("open", "builtins.open", "io.open", "codecs.open"):
                modes = args[1:2]
            else:  # Path.open("w"), gzip.open(p, "wb"): only a literal that reads as a mode
                modes = [a for a in args[:2] if _MODE.fullmatch(_str(a) or "")][:1]
            modes += [k.value for k in node.keywords if k.arg == "mode"]
            if any(_str(m) is None or set(_str(m)) & set("wax+") for m in modes):
                self.hits.append(("file_write", line, f or "open"))

    def target(self, node: ast.AST, line: int) -> None:
        """Assignment or deletion targets that reach into modules, builtins or code objects."""
        if isinstance(node, (ast.Tuple, ast.List, ast.Starred)):
            for elt in [node.value] if isinstance(node, ast.Starred) else node.elts:
                self.target(elt, line)
        elif isinstance(node, ast.Attribute):
            name = self.resolve(node) or node.attr
            if name.startswith("torch.backends."):
                self.hits.append(("global_flag", line, name))
            elif node.attr in _PATCH_DUNDERS or self.module_like(node):
                self.hits.append(("monkeypatch", line, name))
        elif isinstance(node, ast.Subscript):
            base = self.resolve(node.value) or ""
            if base.startswith("builtins") or base == "sys.modules" or base.endswith(".__dict__"):
                self.hits.append(("monkeypatch", line, base + "[...]"))

    def string(self, text: str, first: int, last: int) -> None:
        """String literals: embedded native code, and compiler options that change the run."""
        if "default-stream" in text:
            self.hits.append(("stream", first, "--default-stream"))
        if "reduce-overhead" in text or "cudagraph" in text.lower():
            self.hits.append(("cuda_graph", first, repr(text[:30])))
        if _NATIVE_HINT.search(text):
            self.hits += _scan_native(text, first, last)

    def caches(self, tree: ast.Module) -> None:
        """Module- or class-level dicts (and self.x = {}) written to from inside functions."""
        is_dict = lambda v: isinstance(v, (ast.Dict, ast.DictComp)) or (  # noqa: E731
            isinstance(v, ast.Call) and self.resolve(v.func) in _CONTAINERS)
        nodes = list(ast.walk(tree))
        bodies = [(tree.body, "name")] + [(n.body, "attr") for n in nodes if isinstance(n, ast.ClassDef)]
        names: set[str] = set()
        attrs: set[str] = set()
        for body, kind in bodies:
            for stmt in body:
                if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and is_dict(stmt.value):
                    for t in getattr(stmt, "targets", None) or [stmt.target]:
                        if isinstance(t, ast.Name):
                            (names if kind == "name" else attrs).add(t.id)
        attrs |= {t.attr for n in nodes if isinstance(n, ast.Assign) and is_dict(n.value)
                  for t in n.targets if isinstance(t, ast.Attribute)}
        cached = lambda n: (isinstance(n, ast.Name) and n.id in names) or (  # noqa: E731
            isinstance(n, ast.Attribute) and n.attr in attrs)
        for fn in (n for n in nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))):
            for n in ast.walk(fn):
                store = isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store) and cached(n.value)
                method = isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and (
                    n.func.attr in ("setdefault", "update", "__setitem__") and cached(n.func.value))
                if store or method:
                    self.hits.append(("memo_cache", n.lineno, "a dict kept between calls"))


def _finding(rule: str, line: int, name: str) -> ScanFinding:
    what, why, _ = _RULES.get(rule, (rule, "worth a look", ""))
    name = " ".join(str(name).split()).rstrip(" (;={")
    name = name if len(name) <= 60 else name[:57] + "..."
    return ScanFinding(rule, line, f"{what} ({name}) at line {line}: {why}")


def scan_source(source: str) -> list[ScanFinding]:
    """Scan a candidate's source; findings sorted by line, one per (rule, line). Never raises."""
    try:
        tree = ast.parse(source)
    except Exception as exc:  # SyntaxError, ValueError (NUL bytes), RecursionError, MemoryError, TypeError
        line = getattr(exc, "lineno", None) or 1
        return [_finding("syntax", line, getattr(exc, "msg", None) or str(exc) or type(exc).__name__)]
    hits: list[tuple[str, int, str]] = []
    try:
        scan = _Scan(tree, hits)
        scan.run(tree)
    except Exception as exc:  # a pathological tree must not take the judge down; keep what was found
        hits.append(("scan_error", 1, type(exc).__name__))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "/proc/" in node.value:
            hits.append(("proc", getattr(node, "lineno", 1), "/proc"))
    unique: dict[tuple[str, int], ScanFinding] = {}
    for rule, line, name in hits:
        unique.setdefault((rule, line), _finding(rule, line, name))
    return sorted(unique.values(), key=lambda f: (f.line, f.rule))


def summarize(findings: list[ScanFinding]) -> list[str]:
    """One line per rule, in order of first appearance: 'static scan: starts a thread (line 12, 30)'."""
    lines: dict[str, dict[int, None]] = {}  # dicts as ordered sets
    for f in findings:
        lines.setdefault(f.rule, {})[f.line] = None
    out = []
    for rule, nums in lines.items():
        shown = ", ".join(map(str, list(nums)[:10])) + (", ..." if len(nums) > 10 else "")
        out.append(f"static scan: {_RULES.get(rule, (rule,))[0]} (line {shown})")
    return out

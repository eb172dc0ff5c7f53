"""Turn an LLM reply into candidate source, or a one-sentence reason there is none.

Rules, in order:
- A `<think>` section (reasoning models served locally) is dropped: drafts in it
  are not the answer.
- Fenced blocks tagged python/py/python3 or untagged are the code blocks; other
  languages (a ```cuda block whose text the Python block embeds) are ignored.
- Of several code blocks the last one defining `ModelNew` wins: replies tend to
  echo the original first and end with the final version. Blocks are never
  stitched together, since a trailing usage example would then run at import.
- A block that defines `class Model` once and no `ModelNew` is renamed, when
  exactly one block does so; otherwise the reply "defines no class ModelNew".
- A reply with no fences is accepted as a bare module when it parses.
- An unclosed fence, or code that does not parse, is a failure naming the line.
  A reply cut at the token limit ("length", "max_tokens") fails unless its code
  block closed and parses: the cut then fell in the prose after the code.
`extract_candidate` never raises.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
from dataclasses import dataclass

TRUNCATED_REASONS = frozenset({"length", "max_tokens"})
PYTHON_TAGS = frozenset({"python", "py", "python3", "py3", ""})  # "" = untagged
MAX_REPLY_CHARS = 1_000_000  # far above any real reply; bounds the work on junk
TARGET, REFERENCE = "ModelNew", "Model"

_OPEN = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*\{?\.?([\w+#.-]*)")
_CLOSE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*$")
_DEFINES_TARGET = re.compile(rf"^[ \t]*(?:class[ \t]+{TARGET}\b|{TARGET}[ \t]*=)", re.MULTILINE)
_DEFINES_REFERENCE = re.compile(rf"^[ \t]*class[ \t]+{REFERENCE}\b", re.MULTILINE)
_CODE_START = re.compile(r"^(?:import \w|from [\w.]+ import \w|class \w+ *[(:]|def \w+ *\(|@\w)", re.MULTILINE)


@dataclass(frozen=True)
class ParsedReply:
    """Candidate source or a failure (exactly one set); `note` says what was fixed up."""

    source: str | None
    failure: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if (self.source is None) == (self.failure is None):
            raise ValueError("a parsed reply holds either source or a failure")


@dataclass(frozen=True)
class _Block:
    lang: str
    code: str
    closed: bool


def extract_candidate(reply_text: str, finish_reason: str = "stop") -> ParsedReply:
    """The candidate source in an LLM reply, or a one-sentence failure; never raises."""
    try:
        return _extract(reply_text, finish_reason)
    except Exception as exc:  # the contract is a failure, never an exception
        return ParsedReply(None, f"the reply could not be read ({type(exc).__name__}).")


def _extract(reply_text: object, finish_reason: object) -> ParsedReply:
    if isinstance(reply_text, (bytes, bytearray)):
        reply_text = bytes(reply_text).decode("utf-8", errors="replace")
    text = reply_text if isinstance(reply_text, str) else ""
    if len(text) > MAX_REPLY_CHARS:
        return _fail(f"the reply is too long to be a kernel ({len(text)} characters)")
    cut = str(finish_reason).strip().lower() in TRUNCATED_REASONS
    text = _drop_thinking(text)
    if not text.strip():
        ended = " (it was cut off while thinking)" if cut else ""
        return _fail(f"the reply is empty{ended}")
    blocks = _fenced_blocks(text)
    if not blocks:
        return _bare_module(text, cut)
    code_blocks = [b for b in blocks if b.lang in PYTHON_TAGS]
    if not code_blocks:
        langs = ", ".join(sorted({b.lang for b in blocks}))
        return _fail(f"the reply holds no Python code block (only {langs})")
    block, note = _choose(code_blocks)
    if block is None:
        return _fail(note)
    return _check(block.code, closed=block.closed, cut=cut, note=note)


def _drop_thinking(text: str) -> str:
    end = text.rfind("</think>")
    if end >= 0:
        return text[end + len("</think>") :]
    start = text.find("<think>")
    return text[:start] if start >= 0 else text  # never closed: no answer followed


def _fenced_blocks(text: str) -> list[_Block]:
    blocks: list[_Block] = []
    fence, lang = "", ""  # fence == "" means outside a block
    body: list[str] = []
    for line in text.splitlines():
        if not fence:
            opened = _OPEN.match(line)
            if opened:
                fence, lang, body = opened.group(1), opened.group(2).lower(), []
            continue
        closed = _CLOSE.match(line)
        if closed and closed.group(1)[0] == fence[0] and len(closed.group(1)) >= len(fence):
            blocks.append(_Block(lang, textwrap.dedent("\n".join(body)), closed=True))
            fence = ""
        else:
            body.append(line)
    if fence:
        blocks.append(_Block(lang, textwrap.dedent("\n".join(body)), closed=False))
    return blocks


def _choose(blocks: list[_Block]) -> tuple[_Block | None, str]:
    """(block, note) or (None, failure)."""
    defining = [b for b in blocks if _DEFINES_TARGET.search(b.code)]
    if defining:
        note = f"took the last of {len(defining)} blocks defining {TARGET}" if len(defining) > 1 else ""
        return defining[-1], note
    references = [b for b in blocks if _DEFINES_REFERENCE.search(b.code)]
    if len(references) > 1:
        return None, f"the reply defines no class {TARGET} (several blocks define class {REFERENCE})"
    # One reference block gets renamed; with none, the last block says best whether
    # the reply was cut before ModelNew or simply lacks it.
    return (references or blocks)[-1], ""


def _bare_module(text: str, cut: bool) -> ParsedReply:
    start = _CODE_START.search(text)
    if start is None:
        return _fail("the reply holds no code block")
    whole = _parse(text)
    # Prose before the first import/class/def is dropped only when the whole fails.
    code = text if isinstance(whole, ast.Module) else text[start.start() :]
    # Without a closing fence nothing shows the module ended where the cut fell.
    return _check(code, closed=not cut, cut=cut, note="")


def _check(code: str, *, closed: bool, cut: bool, note: str) -> ParsedReply:
    tree = _parse(code)
    if not closed:
        detail = tree if isinstance(tree, str) else "the reply stops before its code ends"
        return _fail(f"the code is truncated: {detail}")
    if isinstance(tree, str):
        return _fail(f"the code does not parse: {tree}")
    if cut:
        note = _join(note, "the reply was cut off after its code block")
    if _binds(tree.body, TARGET):
        return ParsedReply(code.strip("\n") + "\n", note=note)
    renamed = _rename_reference(code, tree)
    if renamed is None:
        return _fail(f"the reply defines no class {TARGET}")
    return ParsedReply(renamed.strip("\n") + "\n", note=_join(note, f"renamed class {REFERENCE} to {TARGET}"))


def _parse(code: str) -> ast.Module | str:
    """The module, or "line N: message" when it does not parse."""
    try:
        return ast.parse(code)
    except SyntaxError as exc:
        return f"line {exc.lineno or '?'}: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        return f"{type(exc).__name__}: {exc}"


def _binds(body: list[ast.stmt], name: str) -> bool:
    """Whether module-level code (including if/try/with bodies) binds `name`."""
    for stmt in body:
        if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == name:
            return True
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
        if isinstance(stmt, (ast.Import, ast.ImportFrom)) and any((a.asname or a.name) == name for a in stmt.names):
            return True
        nested = [getattr(stmt, f, []) for f in ("body", "orelse", "finalbody")]
        nested += [h.body for h in getattr(stmt, "handlers", [])]
        if isinstance(stmt, (ast.If, ast.Try, ast.With)) and any(_binds(b, name) for b in nested):
            return True
    return False


def _rename_reference(code: str, tree: ast.Module) -> str | None:
    """`code` with the name Model renamed to ModelNew, or None when that is ambiguous."""
    classes = [s for s in tree.body if isinstance(s, ast.ClassDef) and s.name == REFERENCE]
    if len(classes) != 1 or any(isinstance(n, ast.Name) and n.id == TARGET for n in ast.walk(tree)):
        return None
    # Rename every use of the name (super(Model, self), Model.forward), not only the
    # class statement; attribute names (nn.Model) and strings stay as they are.
    lines = code.splitlines(keepends=True)
    spots: list[tuple[int, int]] = []
    previous = ""
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.NAME and tok.string == REFERENCE and previous != ".":
            spots.append(tok.start)
        if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
            previous = tok.string
    for row, col in reversed(spots):
        line = lines[row - 1]
        lines[row - 1] = line[:col] + TARGET + line[col + len(REFERENCE) :]
    return "".join(lines)


def _join(note: str, more: str) -> str:
    return f"{note}; {more}" if note else more


def _fail(reason: str) -> ParsedReply:
    return ParsedReply(None, reason.rstrip(".") + ".")

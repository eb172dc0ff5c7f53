"""The documentation site: it builds under `mkdocs build --strict`, its links resolve, and the
threat model lists every exploit test.

External (http, https, mailto, ...) links are never fetched: CI may have no network.
"""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
THREAT_MODEL = DOCS / "threat-model.md"
EXPLOITS = ROOT / "tests" / "exploits"

# The Markdown files whose relative links must resolve: the two READMEs and every page.
LINKED_FILES = [ROOT / "README.md", ROOT / "examples" / "README.md", *sorted(DOCS.rglob("*.md"))]
# The extensions mkdocs.yml enables (toc gives headings the ids mkdocs links to).
_EXTENSIONS = ["toc", "tables", "fenced_code", "admonition"]


class _Collector(HTMLParser):
    """hrefs/srcs of links and images, and every element id, from rendered HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id":
                self.ids.add(value)
            elif (tag, name) in (("a", "href"), ("img", "src")):
                self.links.append(value)


_rendered: dict[Path, _Collector] = {}


def _render(path: Path) -> _Collector:
    """Links and anchors of a Markdown file, parsed as mkdocs parses it (code blocks hold no links)."""
    if path not in _rendered:
        import markdown

        html = markdown.Markdown(extensions=_EXTENSIONS).convert(path.read_text(encoding="utf-8"))
        collector = _Collector()
        collector.feed(html)
        _rendered[path] = collector
    return _rendered[path]


def _broken_links(path: Path) -> list[str]:
    problems = []
    for link in _render(path).links:
        parts = urlsplit(link)
        if parts.scheme or parts.netloc:  # http(s), mailto, ...: not fetched
            continue
        where = f"{path.relative_to(ROOT)}: link {link!r}"
        if parts.path.startswith("/"):
            problems.append(f"{where} is absolute; use a relative path")
            continue
        target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
        if not target.exists():
            problems.append(f"{where}: {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target} "
                            "does not exist")
            continue
        anchor = unquote(parts.fragment)
        if not anchor or target.suffix != ".md":
            continue
        # Pages rendered by mkdocstrings (`::: module`) get their anchors at build time,
        # where the strict build checks them.
        if re.search(r"^:::", target.read_text(encoding="utf-8"), re.MULTILINE):
            continue
        if anchor not in _render(target).ids:
            problems.append(f"{where}: no heading with anchor #{anchor} in {target.relative_to(ROOT)}")
    return problems


def test_site_builds_strict(tmp_path: Path) -> None:
    """`mkdocs build --strict`: no broken link or anchor, no page left out, every docstring renders."""
    pytest.importorskip("mkdocs", reason="install the test extra: pip install -e '.[test]'")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "threat-model" / "index.html").exists()


@pytest.mark.parametrize("path", LINKED_FILES, ids=[str(p.relative_to(ROOT)) for p in LINKED_FILES])
def test_relative_links_resolve(path: Path) -> None:
    """Every relative link points at an existing file, and every #anchor into a page at a heading."""
    pytest.importorskip("markdown", reason="install the test extra: pip install -e '.[test]'")
    assert not _broken_links(path), "\n".join(_broken_links(path))


def test_threat_model_lists_every_exploit_test() -> None:
    """The threat model cannot silently fall behind the exploit suite (nor name tests that are gone)."""
    text = THREAT_MODEL.read_text(encoding="utf-8")
    tests = sorted(p.name for p in EXPLOITS.glob("test_*.py"))
    assert tests, "no exploit tests found"
    missing = [name for name in tests if f"`{name}`" not in text]
    assert not missing, f"docs/threat-model.md does not list: {', '.join(missing)}"
    named = set(re.findall(r"`(test_\w+\.py)`", text))
    gone = sorted(named - set(tests))
    assert not gone, f"docs/threat-model.md names exploit tests that do not exist: {', '.join(gone)}"

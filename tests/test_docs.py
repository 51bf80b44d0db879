"""Every example in README.md and docs/*.md runs and prints what the page shows.

The conventions, written for authors in docs/development.md ("Examples are tests"):

- A ```python block is a doctest session: ``>>>`` and ``...`` prompts, the expected output under them. Each block
  runs on its own (a fresh namespace) in a fresh temporary folder. ``...`` in an expected line matches anything
  (doctest's ELLIPSIS). A warning shows as ``Category: message``, where a terminal would show it on stderr.
- A ```console block holds ``$ flowsched ARGS`` lines, each followed by what the command prints (stdout and stderr
  as a terminal shows them). Continuation lines end in `` \\``; ``# ...`` starts a comment; ``| grep TEXT`` keeps the
  lines that contain TEXT. The commands of one block run in order, in one fresh temporary folder, through
  ``flowsched.cli.main``. In the expected output a line that is exactly ``...`` stands for any number of lines, and
  ``...`` inside a line for any text. A command whose output shows ``flowsched: error:`` must exit with status 2,
  any other with 0. Files they write (``--out``, ``--plot``) go under ``out/``, so that nothing of the repository
  is replaced when a reader runs them from its root.
- A block that must not run is preceded by the line ``<!-- not run: REASON -->`` (invisible on the rendered page);
  the reason says why and what tests it instead. Blocks in other languages (``bash``: install and ``make``
  commands; ``text``: formulas, pseudo-code) are not examples; every fenced block names its language.
- Relative links, and their ``#anchors``, point at files and headings that exist.

Printed floats are rounded (``round``, f-strings, numpy's 8 digits) so that every CPU prints the same digits.
"""

from __future__ import annotations

import contextlib
import difflib
import doctest
import io
import itertools
import re
import shlex
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_LANGUAGES = ("python", "console")
#: Fenced blocks may be in one of these languages; anything else is a typo or an example nobody runs.
LANGUAGES = (*RUN_LANGUAGES, "bash", "text")
NOT_RUN = re.compile(r"^<!-- not run: (?P<reason>\S.*\S) -->$")
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")
#: At most this many blocks may be exempt: each one is a gap in what the suite checks.
MAX_NOT_RUN = 4


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str  # the block's lines, dedented by the fence's indent
    not_run: str | None  # the reason, when the block is marked

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def read_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, with the not-run mark of the line before each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, start = opening["indent"], i
        closing = indent + "```"
        i += 1
        body = []
        while i < len(lines) and lines[i].rstrip() != closing:
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        if i == len(lines):
            raise AssertionError(f"{page.relative_to(ROOT)}:{start + 1}: code block never closed")
        mark = NOT_RUN.match(lines[start - 1].strip()) if start > 0 else None
        blocks.append(Block(page, start + 1, opening["lang"], "\n".join(body) + "\n", mark and mark["reason"]))
        i += 1
    return blocks


BLOCKS = [block for page in PAGES for block in read_blocks(page)]
EXAMPLES = [block for block in BLOCKS if block.lang in RUN_LANGUAGES and block.not_run is None]


def test_pages_are_found():
    assert (ROOT / "README.md") in PAGES and len(PAGES) > 5
    assert len(EXAMPLES) > 20


def test_blocks_name_their_language():
    untagged = [f"{b.name} ({b.lang or 'no language'})" for b in BLOCKS if b.lang not in LANGUAGES]
    assert not untagged, f"tag every fenced block with one of {LANGUAGES}: {untagged}"


def test_few_blocks_are_exempt():
    exempt = [f"{b.name}: {b.not_run}" for b in BLOCKS if b.not_run is not None]
    assert len(exempt) <= MAX_NOT_RUN, exempt
    marked_elsewhere = [b.name for b in BLOCKS if b.not_run is not None and b.lang not in RUN_LANGUAGES]
    assert not marked_elsewhere, f"only python and console blocks run, so only they can be exempt: {marked_elsewhere}"


def test_python_blocks_are_sessions():
    scripts = [b.name for b in EXAMPLES if b.lang == "python" and ">>> " not in b.text]
    assert not scripts, f"write these as >>> sessions with their output, or mark them not run: {scripts}"


# ---------------------------------------------------------------------------------------------------- links

LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def without_code_blocks(page: Path) -> str:
    return re.sub(r"(?ms)^ *```.*?^ *```", "", page.read_text(encoding="utf-8"))


def link_targets(page: Path) -> list[str]:
    """The targets of the page's Markdown links, outside code and HTML comments."""
    text = re.sub(r"<!--.*?-->", "", without_code_blocks(page), flags=re.S)
    return LINK.findall(re.sub(r"`[^`\n]*`", "", text))


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings: lowercase, punctuation (backticks included) dropped, spaces
    to hyphens, and ``-1``, ``-2`` appended to repeats."""
    result, repeats = set(), Counter()
    for heading in re.findall(r"(?m)^#{1,6} +(.+?) *$", without_code_blocks(page)):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        result.add(f"{slug}-{repeats[slug]}" if repeats[slug] else slug)
        repeats[slug] += 1
    return result


def test_links_resolve():
    broken = []
    for page in PAGES:
        for target in link_targets(page):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked here
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken


# ---------------------------------------------------------------------------------------------------- python


NUMPY_PRINT_DEFAULTS = dict(precision=8, threshold=1000, edgeitems=3, linewidth=75, suppress=False, floatmode="maxprec")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    # Where a terminal shows a warning on stderr, the page shows `Category: message` in the output.
    print(f"{category.__name__}: {message}")


@pytest.mark.parametrize("block", [b for b in EXAMPLES if b.lang == "python"], ids=lambda b: b.name)
def test_python_example(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    test = doctest.DocTestParser().get_doctest(block.text, {}, block.name, str(block.page), block.line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report = io.StringIO()
    torch.set_printoptions(profile="default")  # the pages show numpy's and torch's default reprs
    with warnings.catch_warnings(), np.printoptions(**NUMPY_PRINT_DEFAULTS):
        warnings.simplefilter("always")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        monkeypatch.setattr(warnings, "showwarning", _show_warning)
        result = runner.run(test, out=report.write, clear_globs=True)
    if result.failed:
        pytest.fail(report.getvalue(), pytrace=False)


# ---------------------------------------------------------------------------------------------------- console


@dataclass(frozen=True)
class Command:
    argv: list[str]
    grep: str | None
    expected: list[str]
    line: int


def parse_console(block: Block) -> list[Command]:
    """The ``$`` commands of a console block with the lines each one prints."""
    commands: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise AssertionError(f"{block.name}: output before the first `$ ` command: {lines[i]!r}")
        first, text = i, lines[i][2:]
        while text.endswith("\\"):
            i += 1
            text = text[:-1] + " " + lines[i].strip()
        i += 1
        expected = []
        while i < len(lines) and not lines[i].startswith("$ "):
            expected.append(lines[i].rstrip())
            i += 1
        words = shlex.split(text, comments=True)
        grep = None
        if "|" in words:
            bar = words.index("|")
            tail, words = words[bar + 1 :], words[:bar]
            assert len(tail) == 2 and tail[0] == "grep", f"{block.name}: only `| grep TEXT` is supported: {text!r}"
            grep = tail[1]
        assert words[:1] == ["flowsched"], f"{block.name}: console examples run `flowsched ...`, got {text!r}"
        commands.append(Command(words[1:], grep, expected, block.line + 1 + first))
    return commands


def run_flowsched(argv: list[str]) -> tuple[int, str]:
    """Exit status and the combined stdout and stderr of ``flowsched ARGV``, run in this process."""
    from flowsched.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            status = main(argv)
        except SystemExit as exc:  # --help, --version
            status = exc.code or 0
    return status, buffer.getvalue()


def expected_pattern(expected: list[str]) -> re.Pattern:
    """A regex for the expected lines: a line ``...`` is any number of lines, ``...`` in a line is any text."""
    parts = []
    for line in expected:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*".join(re.escape(piece) for piece in line.split("...")) + r"\n")
    return re.compile("".join(parts))


def check_output(command: Command, status: int, output: str, where: str) -> None:
    lines = [line.rstrip() for line in output.splitlines()]
    if command.grep is not None:
        lines = [line for line in lines if command.grep in line]
    shown = "".join(line + "\n" for line in lines)
    if not expected_pattern(command.expected).fullmatch(shown):
        diff = difflib.unified_diff(command.expected, lines, "the page shows", "the command printed", lineterm="")
        pytest.fail(f"{where}: `flowsched {shlex.join(command.argv)}`:\n" + "\n".join(diff), pytrace=False)
    error = any(line.startswith("flowsched: error:") for line in lines)
    if status != (2 if error else 0):
        pytest.fail(f"{where}: `flowsched {shlex.join(command.argv)}` exited with status {status}", pytrace=False)


#: Options whose value is a file the command writes.
OUTPUT_OPTIONS = ("--out", "--plot")


def test_console_examples_write_to_out():
    # run from the repository root, as the pages say, an example must not replace a file of the repository
    stray = []
    for block in (b for b in BLOCKS if b.lang == "console"):
        for command in parse_console(block) if block.not_run is None else []:
            for option, value in itertools.pairwise(command.argv):
                if option in OUTPUT_OPTIONS and not (value.startswith(("out/", "/dev/")) or value == "-"):
                    stray.append(f"{block.name}: {option} {value}")
    assert not stray, f"examples write under out/: {stray}"


@pytest.mark.parametrize("block", [b for b in EXAMPLES if b.lang == "console"], ids=lambda b: b.name)
def test_console_example(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for command in parse_console(block):
        status, output = run_flowsched(command.argv)
        check_output(command, status, output, f"{block.page.relative_to(ROOT)}:{command.line}")


# ---------------------------------------------------------------------------------------------------- the runner


def test_expected_pattern_ellipsis():
    pattern = expected_pattern(["a", "...", "x ... z"])
    assert pattern.fullmatch("a\nx y z\n") and pattern.fullmatch("a\n1\n2\nx yy z\n")
    assert not pattern.fullmatch("a\nx y\n") and not pattern.fullmatch("b\nx y z\n")
    assert expected_pattern(["(1.5, [2])"]).fullmatch("(1.5, [2])\n")


def test_parse_console_continuations_comments_and_grep(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "x\n```console\n$ flowsched a \\\n    'b c'   # note\nout 1\nout 2\n$ flowsched d | grep sha\nsha x\n```\n"
    )
    (block,) = read_blocks(page)
    first, second = parse_console(Block(ROOT / "README.md", block.line, block.lang, block.text, None))
    assert first.argv == ["a", "b c"] and first.expected == ["out 1", "out 2"] and first.grep is None
    assert second.argv == ["d"] and second.grep == "sha" and second.expected == ["sha x"]


def test_read_blocks_marks_and_indents(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- not run: it needs a GPU -->\n```python\n>>> 1\n1\n```\n- item\n\n  ```text\n  a\n  ```\n")
    marked, indented = read_blocks(page)
    assert marked.not_run == "it needs a GPU" and marked.lang == "python" and marked.line == 2
    assert indented.lang == "text" and indented.text == "a\n" and indented.not_run is None


def test_anchors_follow_github(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A page\n## 3. Sampling: `euler(x, *, t=1)`\n```text\n# not a heading\n```\n## Notes\n## Notes\n")
    assert anchors(page) == {"a-page", "3-sampling-eulerx--t1", "notes", "notes-1"}


def test_link_targets_skip_code_and_comments(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[a](x.md#y) and `[b](z)`\n```text\n[c](w)\n```\n<!-- [d](v) -->\n![e](img/f.png)\n")
    assert link_targets(page) == ["x.md#y", "img/f.png"]


def _modules() -> list[str]:
    import pkgutil

    import flowsched

    names = ["flowsched"] + [m.name for m in pkgutil.walk_packages(flowsched.__path__, "flowsched.")]
    return [n for n in names if not n.endswith("__main__")]


@pytest.mark.parametrize("name", _modules())
def test_module_docstring_examples(name):
    # the >>> examples in the package's own docstrings run too (those that need a pipeline say +SKIP)
    import importlib

    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0

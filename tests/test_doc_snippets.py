"""Every ```python and ```bash block of the user-facing docs runs, as written, on CPU and offline.

Covered files: README.md, docs/**/*.md, model_cards/*.md, the shipped model and dataset cards
(src/trustvl/assets/*/*/README.md) and the Spaces' READMEs. A block is skipped only when the line before it
(blank lines aside) is ``<!-- not-run: REASON -->`` (e.g. a pip install, a real Hub id, a GPU-sized training
run) or the README's ``<!-- test-command -->`` marker (that line is .ci/run's own command, the whole suite).
Blocks in other languages (``text``, ``yaml``, none) are not code and are not run.

Each block runs in a fresh temporary folder laid out like a checkout: ``src/`` is a link to the repository's,
``spaces/``, ``evaluate_metrics/`` and ``benchmarks/`` are copies (so no snippet can change the repository), and ``path/to/<model>`` links to
each shipped model (the placeholder the cards use for "where you downloaded it"; the SD's complete folder). Python blocks run in this
process with a fresh namespace (imports are shared, which keeps the file fast); bash blocks run in ``bash -e``
with ``trustvl`` and ``python`` meaning this interpreter and this checkout's sources. Identical blocks (a card
shipped in two places) run once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from trustvl.modeling.synthworld_sd import complete_sd_folder

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "src" / "trustvl" / "assets" / "models"
DOC_GLOBS = (
    "README.md",
    "docs/**/*.md",
    "model_cards/*.md",
    "src/trustvl/assets/*/*/README.md",
    "spaces/*/README.md",
)
CHECKOUT_LINKS = ("src",)  # large and only read
CHECKOUT_COPIES = (
    "spaces",
    "evaluate_metrics",
    "benchmarks",
)  # small; copied so no snippet can change the repository
FENCE = re.compile(r"^```(\S*)\s*$")
NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(?P<reason>.*?)\s*-->$")
TEST_COMMAND = "<!-- test-command -->"
RUN_LANGUAGES = {"python": "python", "bash": "bash", "sh": "bash", "shell": "bash", "console": "bash"}
SHELL_TIMEOUT_S = 300


@dataclass(frozen=True)
class Block:
    file: str  # relative to the repository root
    line: int  # line of the opening fence, 1-based
    language: str  # "python", "bash" or another fence language
    code: str
    skip_reason: str | None  # why it is not run (None: it runs)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def doc_files() -> list[Path]:
    files = {p for pattern in DOC_GLOBS for p in ROOT.glob(pattern) if p.is_file()}
    return sorted(files)


def parse_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, language = i, match.group(1).lower()
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{path.relative_to(ROOT)}:{start + 1}: code block never closed")
        i += 1
        before = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = NOT_RUN.match(before)
        reason = marker.group("reason") if marker else None
        if before == TEST_COMMAND:
            reason = "the test command itself (.ci/run runs it on a clean checkout)"
        blocks.append(
            Block(
                str(path.relative_to(ROOT)),
                start + 1,
                RUN_LANGUAGES.get(language, language),
                "\n".join(body) + "\n",
                reason,
            )
        )
    return blocks


ALL_BLOCKS = [b for path in doc_files() for b in parse_blocks(path)]


def runnable(language: str) -> list[pytest.param]:
    """One param per distinct block text of ``language`` that is not marked not-run."""
    seen: dict[str, list[Block]] = {}
    for block in ALL_BLOCKS:
        if block.language == language and block.skip_reason is None:
            seen.setdefault(block.code, []).append(block)
    return [pytest.param(code, id=found[0].where) for code, found in seen.items()]


def prepare_checkout(folder: Path) -> None:
    for name in CHECKOUT_LINKS:
        (folder / name).symlink_to(ROOT / name, target_is_directory=True)
    for name in CHECKOUT_COPIES:
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    placeholders = folder / "path" / "to"
    placeholders.mkdir(parents=True)
    for model in MODELS.iterdir():
        if (model / "README.md").is_file():
            # a downloaded SD folder is complete; the package's stores its text encoder in the CLIP only
            target = complete_sd_folder(model) if model.name == "synthworld-sd" else model
            (placeholders / model.name).symlink_to(target, target_is_directory=True)


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    prepare_checkout(work)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TRUSTVL_CACHE", str(tmp_path / "cache"))
    return work


@pytest.mark.parametrize("code", runnable("python"))
def test_python_block_runs(code, checkout):
    namespace = {"__name__": "__main__"}
    exec(compile(code, "<doc snippet>", "exec"), namespace)


@pytest.mark.parametrize("code", runnable("bash"))
def test_bash_block_runs(code, checkout, tmp_path):
    shims = tmp_path / "bin"
    shims.mkdir()
    for name, args in (("trustvl", '-m trustvl.cli "$@"'), ("python", '"$@"'), ("python3", '"$@"')):
        shim = shims / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {args}\n')
        shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{shims}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", code],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=SHELL_TIMEOUT_S,
    )
    assert done.returncode == 0, (
        f"exit {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )


def test_every_skip_says_why_and_marks_a_block():
    for path in doc_files():
        lines = path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            marker = NOT_RUN.match(line.strip())
            if marker is None:
                continue
            assert marker.group("reason"), (
                f"{path.relative_to(ROOT)}:{n + 1}: not-run marker without a reason"
            )
            following = next((s for s in lines[n + 1 :] if s.strip()), "")
            assert FENCE.match(following), (
                f"{path.relative_to(ROOT)}:{n + 1}: not-run marker not before a block"
            )


def test_the_docs_have_blocks_that_run():
    """Guards the collection itself: the README's method sections and each shipped card keep a runnable block."""
    running = [b for b in ALL_BLOCKS if b.language in ("python", "bash") and b.skip_reason is None]
    assert sum(b.file == "README.md" and b.language == "python" for b in running) >= 6
    for card in ("synthworld-sd", "synthworld-outcome-classifier", "synthworld-clip"):
        assert any(b.file == f"src/trustvl/assets/models/{card}/README.md" for b in running), card


LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_links_stay_inside_the_repository():
    for path in doc_files():
        for target in LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+://|^mailto:", target):
                continue
            file_part = target.split("#", 1)[0]
            if not file_part:
                continue
            resolved = (path.parent / file_part).resolve()
            where = f"{path.relative_to(ROOT)} links {target}"
            assert resolved.is_relative_to(ROOT), f"{where}: outside the repository"
            assert resolved.exists(), f"{where}: no such file"


def test_readme_is_short_and_keeps_the_ci_command():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250
    at = lines.index(TEST_COMMAND)
    command = lines[at + 2]  # .ci/run reads the command line inside the block after the marker
    assert (
        lines[at + 1] == "```bash"
        and "python -m pytest" in command
        and 'pip install -c constraints.txt -e ".[test]"' in command
    )

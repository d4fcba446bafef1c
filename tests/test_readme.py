"""Every code block in README.md runs as written, in order, against what ships with the package.

Fences say how a block is checked: ```python blocks run as they are, each in a fresh interpreter; ```sh blocks
run with bash from the repository root; ```json blocks must parse. ```console blocks are the set-up commands
(installing, the full-length demo run) that CI runs by other means; ```text blocks are output or layouts.
Commands write only under /tmp/bert_keras/, which the test clears first.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
WORK_DIR = pathlib.Path("/tmp/bert_keras")
LANGUAGES = {"python", "sh", "json", "console", "text"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)


def blocks() -> list[tuple[int, str, str]]:
    """(line number, language, code) of every fenced block, in README order."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def test_every_block_says_how_it_is_checked():
    found = blocks()
    assert found, "README.md has no code blocks"
    assert [(line, lang) for line, lang, _ in found if lang not in LANGUAGES] == []
    # An indented or unclosed fence would hide a block from this test.
    assert README.read_text(encoding="utf-8").count("```") == 2 * len(found)


def test_readme_blocks_run_as_written():
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "HF_HUB_OFFLINE": "1"}
    for line, lang, code in blocks():
        where = f"README.md:{line} ({lang})"
        if lang == "json":
            json.loads(code)
            continue
        if lang not in ("python", "sh"):
            continue
        command = [sys.executable, "-c", code] if lang == "python" else ["bash", "-euo", "pipefail", "-c", code]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            pytest.fail(f"{where} failed (exit {result.returncode}):\n{code}\n--- stderr ---\n"
                        f"{result.stderr[-3000:]}\n--- stdout ---\n{result.stdout[-2000:]}")

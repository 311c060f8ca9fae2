"""Every command that README.md, docs/RESULTS.md and the `--help` epilogs show parses as written with today's
parser (`regaze ...`, `torchrun ... -m regaze.cli ...`), and every `python -m MODULE` they name exists."""
from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from regaze.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "RESULTS.md"]
STARTS = ("regaze ", "torchrun ", "python -m ")
_ENV = re.compile(r"^(?:[A-Z_]+=\S+\s+)+")


def _commands_in_markdown(text: str) -> list[str]:
    found, in_block, pending = [], False, ""
    for line in text.splitlines():
        if line.startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            line = pending + line.split("  #")[0].strip()
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            found.append(line)
    for span in re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S)):
        found.append(" ".join(span.split()))
    return [c for c in (_ENV.sub("", c) for c in found) if c.startswith(STARTS)]


def _commands_in_epilogs() -> list[str]:
    found = []
    for module_name in COMMANDS.values():
        epilog = getattr(importlib.import_module(module_name), "EPILOG", "")
        pending = ""
        for line in epilog.splitlines():
            line = pending + _ENV.sub("", line.split("  #")[0].strip())
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1] + " "
            elif line.startswith(STARTS):
                found.append(line)
    return found


DOCUMENTED = sorted({c for doc in DOCS for c in _commands_in_markdown(doc.read_text())} | set(_commands_in_epilogs()))


def test_the_documents_show_commands():
    assert sum(c.startswith("regaze ") for c in DOCUMENTED) >= 20


@pytest.mark.parametrize("command", DOCUMENTED)
def test_documented_command_runs_as_written(command):
    words = shlex.split(command)
    if words[0] == "python":
        module = words[2]
        assert importlib.util.find_spec(module) is not None, f"no module {module}"
        return
    if words[0] == "torchrun":
        assert "-m" in words and words[words.index("-m") + 1] == "regaze.cli", f"torchrun should run -m regaze.cli"
        words = words[words.index("-m") + 1:]
    args = words[1:]
    if len(args) == 1 and args[0] in COMMANDS:  # `regaze train` named in a sentence
        return
    if args[-1] == "..." and not args[-2].startswith("-"):  # `regaze train ...`: the rest elided
        assert args[0] in COMMANDS, f"no command {args[0]!r}"
        return
    if "..." in args:  # a placeholder stands for the value of the option before it
        args = [a if a != "..." else "PLACEHOLDER" for a in args]
    try:
        build_parser().parse_args(args)
    except SystemExit as e:  # --help exits 0
        if e.code != 0:
            pytest.fail(f"`{command}` does not parse (exit {e.code})")

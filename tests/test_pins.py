"""constraints.txt pins the whole test environment: every distribution `make install` put into .venv."""
from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt: {line!r} is not an exact pin (NAME==VERSION)"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_constraints_are_exact_pins_with_torch_first():
    pins = _pins()
    assert next(iter(pins)) == "torch" and pins["torch"] == "2.13.0"


@pytest.mark.skipif(Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(),
                    reason="checks the environment `make install` builds (.venv), not this one")
def test_every_installed_distribution_is_pinned_at_its_version():
    pins = _pins()
    unpinned, moved = [], []
    for dist in metadata.distributions():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
        if name == "regaze":
            continue
        if name not in pins:
            unpinned.append(f"{name}=={dist.version}")
        elif dist.version.split("+")[0] != pins[name]:
            moved.append(f"{name}: installed {dist.version}, pinned {pins[name]}")
    assert not unpinned and not moved, f"add to constraints.txt: {unpinned}; out of step: {moved}"

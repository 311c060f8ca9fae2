"""Run test work in a child process with a timeout, so that a native crash or a hang fails the tests that
need it, with the child's output, instead of killing or stalling the whole pytest process.

- The `isolated` marker (this file is a pytest plugin, loaded by tests/conftest.py): a test marked
  `@pytest.mark.isolated(timeout=S)` runs as `python -m pytest NODEID` in a child with a wall-clock limit of S
  seconds (default 300). Training, estimator-training and multi-process tests wear it.
- `call_in_child`: one function in a child Python, for the shared fixtures that train a network.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
OUTPUT_TAIL_CHARS = 6000


class ChildFailed(Exception):
    """The child exited non-zero, was killed by a signal, or ran past its timeout; the message has its output."""


def run_child(cmd: list[str], *, timeout_s: float, env: dict | None = None, cwd: Path = ROOT) -> str:
    """Run cmd (stdout and stderr together) in a process session of its own -> its output; ChildFailed when it
    does not exit 0 within timeout_s (then every process it started, torchrun's workers too, is killed)."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.Popen(cmd, cwd=str(cwd), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise ChildFailed(f"timed out after {timeout_s:.0f} s (a hang?); output:\n{out[-OUTPUT_TAIL_CHARS:]}")
    if proc.returncode < 0:
        raise ChildFailed(f"killed by {signal.Signals(-proc.returncode).name} (a crash in native code?); "
                          f"output:\n{out[-OUTPUT_TAIL_CHARS:]}")
    if proc.returncode != 0:
        raise ChildFailed(f"exited with {proc.returncode}; output:\n{out[-OUTPUT_TAIL_CHARS:]}")
    return out


def call_in_child(module: str, function: str, *, kwargs: dict, timeout_s: float = 300) -> str:
    """module.function(**kwargs) in a child Python (kwargs JSON-serialisable) -> the child's output."""
    code = (f"import json, sys; from {module} import {function}; "
            f"{function}(**json.loads(sys.argv[1]))")
    return run_child([sys.executable, "-c", code, json.dumps(kwargs)], timeout_s=timeout_s)


# ------------------------------------------------------------------------------ the `isolated` marker
CHILD_ENV = "REGAZE_ISOLATED_CHILD"  # set in the child: there the marked test runs in process as usual
DEFAULT_TIMEOUT_S = 300


def pytest_configure(config):
    config.addinivalue_line("markers", "isolated(timeout=300): run in a child process with a timeout (seconds); "
                                       "a crash or hang fails this test alone")


class IsolatedItem(pytest.Item):
    """Stands in for a marked test: runs `python -m pytest NODEID` and reports the child's outcome."""

    def __init__(self, *, original: pytest.Item, timeout_s: float, **kwargs):
        super().__init__(**kwargs)
        self.original = original
        self.timeout_s = timeout_s
        self.own_markers = list(original.own_markers)
        self.keywords.update(original.keywords)

    def reportinfo(self):
        return self.original.reportinfo()

    def runtest(self):
        cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "--no-header", "-p", "no:cacheprovider", "-m", "",
               self.original.nodeid]
        out = run_child(cmd, timeout_s=self.timeout_s, env=dict(os.environ, **{CHILD_ENV: "1"}), cwd=self.config.rootpath)
        last = out.strip().splitlines()[-1] if out.strip() else ""
        if " skipped" in last and " passed" not in last:
            reasons = [line for line in out.splitlines() if line.startswith("SKIPPED")]
            pytest.skip(reasons[0] if reasons else last)
        if " passed" not in last:  # exit 0 without a pass: the child collected nothing
            raise ChildFailed(f"the child ran no test; output:\n{out}")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, ChildFailed):
            return f"[isolated, timeout {self.timeout_s:.0f} s] {excinfo.value}"
        return super().repr_failure(excinfo)


@pytest.hookimpl(trylast=True)  # after `-m` / `-k` deselection: only the tests that will run are wrapped
def pytest_collection_modifyitems(session, config, items):
    if os.environ.get(CHILD_ENV):
        return
    for i, item in enumerate(items):
        marker = item.get_closest_marker("isolated")
        if marker is not None:
            timeout_s = float(marker.kwargs.get("timeout", DEFAULT_TIMEOUT_S))
            items[i] = IsolatedItem.from_parent(item.parent, name=item.name, original=item, timeout_s=timeout_s)

"""The `isolated` marker (tests/isolation.py): a crash or a hang fails one test and the others still run."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from isolation import CHILD_ENV, TESTS

SAMPLE = '''
import os, time
import pytest

@pytest.mark.isolated(timeout=60)
def test_aborts():
    os.abort()  # what a heap corruption in native code ends with

@pytest.mark.isolated(timeout=3)
def test_hangs():
    time.sleep(60)

@pytest.mark.isolated(timeout=60)
def test_fails_normally():
    assert 1 == 2, "plain assertion message"

@pytest.mark.isolated(timeout=60)
def test_passes_in_child():
    assert os.environ["{env}"] == "1"

@pytest.mark.isolated(timeout=60)
def test_skips_in_child():
    pytest.skip("no such device here")

def test_runs_after_the_crashes():
    assert "{env}" not in os.environ
'''


def test_crash_and_hang_fail_alone_and_the_rest_runs(tmp_path: Path):
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(SAMPLE.replace("{env}", CHILD_ENV)))
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["isolation"]\n')
    env = {k: v for k, v in os.environ.items() if k != CHILD_ENV}
    env["PYTHONPATH"] = str(TESTS)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=200)
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "3 failed, 2 passed, 1 skipped" in out.splitlines()[-1], out
    assert "killed by SIGABRT" in out and "timed out after 3 s" in out and "plain assertion message" in out
    assert "PASSED test_sample.py::test_runs_after_the_crashes" in out
    assert "no such device here" in out

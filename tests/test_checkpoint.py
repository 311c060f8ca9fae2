"""Checkpoints: exact round trip, atomic writes, loud failures."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from regaze.checkpoint import check_config_matches, load_checkpoint, save_checkpoint
from regaze.errors import RegazeError


def test_round_trip_is_exact(tmp_path):
    net = torch.nn.Linear(4, 3)
    state = {"model": net.state_dict(), "config": {"k": 1, "name": "x"}, "step": 7}
    save_checkpoint(tmp_path / "c.pt", state)
    back = load_checkpoint(tmp_path / "c.pt", required_keys=("model", "step"))
    assert back["step"] == 7 and back["config"] == {"k": 1, "name": "x"}
    for k, v in net.state_dict().items():
        assert torch.equal(back["model"][k], v)
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left


def test_missing_and_foreign_files_are_clear_errors(tmp_path):
    with pytest.raises(RegazeError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RegazeError, match="not a readable regaze checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    save_checkpoint(tmp_path / "c.pt", {"step": 1})
    with pytest.raises(RegazeError, match=r"lacks keys \['model'\]"):
        load_checkpoint(tmp_path / "c.pt", required_keys=("model",))


class Arbitrary:  # an arbitrary pickled object must not load under weights_only=True
    pass


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"obj": Arbitrary()}, tmp_path / "evil.pt")
    with pytest.raises(RegazeError, match="not a readable"):
        load_checkpoint(tmp_path / "evil.pt")


def test_config_mismatch_names_the_keys():
    with pytest.raises(RegazeError, match="size: checkpoint 64 vs current 128"):
        check_config_matches(saved={"size": 64, "k": 2}, current={"size": 128, "k": 2}, keys=("size", "k"), source="run")
    check_config_matches(saved={"size": 64}, current={"size": 64}, keys=("size",), source="run")


@pytest.mark.isolated(timeout=120)
def test_kill_during_save_leaves_previous_checkpoint_loadable(tmp_path):
    """A process SIGKILLed while writing a large checkpoint leaves the old file intact and loadable."""
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 1, "w": torch.zeros(3)})
    script = textwrap.dedent(
        f"""
        import sys, torch
        from regaze.checkpoint import save_checkpoint
        big = {{"step": 2, "w": torch.randn(64, 1024, 1024)}}  # 256 MB: the write takes a while
        print("saving", flush=True)
        save_checkpoint({str(path)!r}, big)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "saving"
    # wait until the temp file exists, then kill mid-write
    for _ in range(400):
        if any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
            break
        import time
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = load_checkpoint(path)
    assert state["step"] == 1

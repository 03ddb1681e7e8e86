"""GPU locks: two processes (Prefect tasks or dvc queue workers) never get the same GPU."""
from __future__ import annotations

import pytest

from motion.core import device as device_mod


@pytest.fixture
def two_gpus(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(device_mod, "LOCK_DIR", tmp_path)
    return tmp_path


def test_cpu_needs_no_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(device_mod, "LOCK_DIR", tmp_path)
    with device_mod.exclusive_gpu("cpu") as held:
        assert held == "cpu"
    assert list(tmp_path.iterdir()) == []


def test_each_holder_gets_its_own_gpu_and_frees_it(two_gpus):
    with device_mod.exclusive_gpu("cuda") as first:
        with device_mod.exclusive_gpu("cuda") as second:
            assert {first, second} == {"cuda:0", "cuda:1"}
    with device_mod.exclusive_gpu("cuda") as again:
        assert again == "cuda:0"


def test_a_named_gpu_is_taken_as_asked(two_gpus):
    with device_mod.exclusive_gpu("cuda:1") as held:
        assert held == "cuda:1"

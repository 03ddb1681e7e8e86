"""LGTM training: the loss falls on a tiny set, resume equals an uninterrupted run, DDP equals one big batch."""
from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from models.diffusion import sample
from models.lgtm import LGTM, load_lgtm
from models.lgtm_train import LAST, TrainConfig, epoch_batches, train
from motion.core.parts import PART_NAMES
from motion.core.sampling import SamplingConfig
from tests.support.lgtm import TINY, make_corpus, make_dataset

torch.set_num_threads(1)
IDS = [f"{i:06d}" for i in range(6)]
WIDE = dataclasses.replace(TINY, window=48)  # longer than every motion: valid-frame counts differ across ranks


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(path)).items() if k.startswith("model.")}


def test_epoch_batches_cover_each_item_once() -> None:
    batches = epoch_batches(10, 3, seed=1, epoch=0)
    flat = [i for b in batches for i in b]
    assert len(batches) == 3 and len(set(flat)) == 9
    assert batches == epoch_batches(10, 3, seed=1, epoch=0) != epoch_batches(10, 3, seed=1, epoch=1)


def test_loss_decreases_on_tiny_overfit_set(tmp_path: Path) -> None:
    paths = make_corpus(tmp_path / "data", num_motions=4)
    data = make_dataset(paths, IDS[:4], TINY.window)
    cfg = TrainConfig(batch_size=4, max_steps=150, lr=3e-3, warmup_steps=10, val_every=150, checkpoint_every=150,
                      log_every=5, seed=3)
    metrics = train(TINY, cfg, data, data, tmp_path / "run", progress=False)
    curve = (tmp_path / "run" / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()[1:]
    losses = [float(line.split("\t")[-1]) for line in curve]
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.6 * first, (first, last)
    assert metrics["step"] == 150 and metrics["val_loss"] < first
    for name in ("model.safetensors", "config.json", "metrics.json", "checkpoints/last.safetensors"):
        assert (tmp_path / "run" / name).is_file()
    assert (tmp_path / "run" / "dvclive" / "plots" / "images" / "train_loss.png").is_file()
    model = load_lgtm(tmp_path / "run")
    out = sample(model, torch.randn(2, 7, TINY.text_dim), torch.tensor([24, 9]), SamplingConfig("ddim", 3, 0.0, 1.0),
                 generator=torch.Generator().manual_seed(0))
    assert set(out) == set(PART_NAMES)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["trainable_parameters"] > 0


def test_resume_equals_uninterrupted_training(tmp_path: Path) -> None:
    paths = make_corpus(tmp_path / "data", num_motions=6)
    data = make_dataset(paths, IDS, TINY.window)
    cfg = TrainConfig(batch_size=4, max_steps=9, lr=1e-3, warmup_steps=2, val_every=4, checkpoint_every=2,
                      log_every=1, cond_drop_prob=0.3, seed=5)
    model_cfg = TINY.__class__(**{**TINY.to_dict(), "dropout": 0.1})  # dropout on: its RNG must resume too
    train(model_cfg, cfg, data, data, tmp_path / "straight", progress=False)
    train(model_cfg, cfg, data, data, tmp_path / "resumed", stop_at=5, progress=False)  # 3 steps per epoch
    info = load_file(str(tmp_path / "resumed" / "checkpoints" / LAST))
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    train(model_cfg, cfg, data, data, tmp_path / "resumed", progress=False)
    a = _weights(tmp_path / "straight" / "checkpoints" / LAST)
    b = _weights(tmp_path / "resumed" / "checkpoints" / LAST)
    assert a.keys() == b.keys() and len(info) > len(a)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert load_file(str(tmp_path / "straight" / "model.safetensors")).keys() == load_file(
        str(tmp_path / "resumed" / "model.safetensors")).keys()
    metrics = [json.loads((tmp_path / r / "metrics.json").read_text()) for r in ("straight", "resumed")]
    assert metrics[0]["val_loss"] == metrics[1]["val_loss"]
    # a rerun of a finished run (DVC reruns the stage; checkpoints persist) keeps its figures
    train(model_cfg, cfg, data, data, tmp_path / "straight", progress=False)
    again = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert again["train_loss"] == metrics[0]["train_loss"] is not None and again["val_loss"] == metrics[0]["val_loss"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    data = make_dataset(make_corpus_paths(Path(root)), IDS, WIDE.window)
    cfg = TrainConfig(batch_size=2, max_steps=6, lr=1e-3, warmup_steps=2, val_every=100, checkpoint_every=3, seed=9)
    train(WIDE, cfg, data, None, Path(root) / "ddp", progress=False)
    torch.distributed.destroy_process_group()


def make_corpus_paths(root: Path) -> dict[str, Path]:
    """Paths of a corpus already written by make_corpus under root/data."""
    data = root / "data"
    return {"features": data / "features", "texts": data / "poses" / "texts.parquet",
            "parts": data / "texts" / "body_part_annotations.json"}


@pytest.mark.slow
def test_ddp_two_gloo_processes_equal_one_big_batch(tmp_path: Path) -> None:
    make_corpus(tmp_path / "data", num_motions=6)
    torch.multiprocessing.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    data = make_dataset(make_corpus_paths(tmp_path), IDS, WIDE.window)
    cfg = TrainConfig(batch_size=4, max_steps=6, lr=1e-3, warmup_steps=2, val_every=100, checkpoint_every=3, seed=9)
    train(WIDE, cfg, data, None, tmp_path / "single", progress=False)
    a = _weights(tmp_path / "ddp" / "checkpoints" / LAST)
    b = _weights(tmp_path / "single" / "checkpoints" / LAST)
    torch.manual_seed(9)
    init = LGTM(WIDE).state_dict()
    moved = torch.cat([(b[k] - init[k[6:]]).abs().flatten() for k in b])
    gap = torch.cat([(a[k] - b[k]).abs().flatten() for k in b])
    # Same batches, noise and loss normalisation: only float summation order differs. Adam turns that into
    # visible differences only for the few parameters whose gradients are near zero (seen: mean gap 1e-7,
    # 0.3% of entries above 1e-5, against a mean movement of 1.5e-3); a real mismatch moves them all.
    assert moved.mean() > 1e-4
    assert gap.mean() < 1e-3 * moved.mean(), (gap.mean(), moved.mean())
    assert (gap > 1e-5).float().mean() < 0.02


def tiny_stage_params(tmp_path: Path, **more: object) -> dict:
    """A 6-motion corpus in ``tmp_path``/data and the real params with a tiny LGTM on random text latents."""
    from stages.settings import LGTMModel

    if not (tmp_path / "data").exists():
        make_corpus(tmp_path / "data", num_motions=6)
    tiny = {f.name: getattr(TINY, f.name) for f in dataclasses.fields(LGTMModel)}  # every key the schema has
    train = {"batch_size": 4, "max_steps": 4, "warmup_steps": 1, "val_every": 2, "checkpoint_every": 2}
    paths = {"features": "data/features", "poses": "data/poses", "texts": "data/texts", "embeddings": "data/emb",
             "tmr": "data/tmr", "lgtm": "out/lgtm", "metrics": "out/metrics"}
    return {"seed": 1, **{f"paths.{k}": v for k, v in paths.items()}, "profile": "cpu",
            "compute.device": "cpu", "compute.threads.train_lgtm": 1, "lgtm.text_latents": "random",
            "captions.min_frames": 10, "captions.max_frames": 200, "lgtm.model": tiny,
            **{f"lgtm.train.{k}": v for k, v in train.items()}, **more}


def test_train_lgtm_stage(tmp_path: Path, stage_params, monkeypatch: pytest.MonkeyPatch) -> None:
    from models.text_latents import TextLatentCache
    from stages import train_lgtm

    stage_params(tiny_stage_params(tmp_path))
    monkeypatch.setattr("sys.argv", ["train_lgtm", "lgtm"])
    train_lgtm.main()
    out = tmp_path / "out" / "lgtm" / "lgtm"  # paths.lgtm / <run>
    cache = TextLatentCache.load(out / "text_latents.npz")
    assert len(cache) == 12 and "000005_1" in cache and cache.dim == 256  # every split, both captions
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["text_dim"] == 256 and config["exported"] == "best"
    assert json.loads((out / "metrics.json").read_text())["step"] == 4
    model = load_lgtm(out)
    assert model.cfg.window == TINY.window
    # the variant without the partition learns from the caption in all seven slots; the full model from the parts
    assert set(cache.texts["head"]) != set(cache.texts["whole_body"])
    monkeypatch.setattr("sys.argv", ["train_lgtm", "no_partition"])
    train_lgtm.main()
    caption_only = TextLatentCache.load(tmp_path / "out" / "lgtm" / "no_partition" / "text_latents.npz")
    for slot in ("head", "left_arm", "right_leg"):
        assert set(caption_only.texts[slot]) == set(cache.texts["whole_body"]), slot
    assert json.loads((tmp_path / "out" / "lgtm" / "no_partition" / "config.json").read_text())["train"]["seed"] == 1
    monkeypatch.setattr("sys.argv", ["train_lgtm", "no_smoothnet"])
    train_lgtm.main()
    assert not load_lgtm(tmp_path / "out" / "lgtm" / "no_smoothnet").cfg.smoothnet  # trained without SmoothNet
    monkeypatch.setattr("sys.argv", ["train_lgtm", "nope"])
    with pytest.raises(SystemExit, match="no run 'nope' in lgtm.runs"):
        train_lgtm.main()


def test_the_stage_trains_every_run_side_by_side_and_a_rerun_retrains_only_what_changed(
        tmp_path: Path, stage_params, monkeypatch: pytest.MonkeyPatch) -> None:
    from models import lgtm_train
    from stages import train_lgtm

    runs = {"lgtm": {"variant": "lgtm", "seed": 0}, "baseline": {"variant": "baseline", "seed": 0}}
    stage_params(tiny_stage_params(tmp_path, **{"lgtm.runs": runs, "compute.processes.train_lgtm": 2,
                                                  "evaluate.variants": ["lgtm", "baseline"]}))
    (tmp_path / "out" / "lgtm" / "old_run").mkdir(parents=True)  # a run no longer in lgtm.runs
    monkeypatch.setattr("sys.argv", ["train_lgtm"])
    train_lgtm.main()
    out = tmp_path / "out" / "lgtm"
    assert sorted(p.name for p in out.iterdir()) == ["baseline", "lgtm"]
    metrics = json.loads((tmp_path / "out" / "metrics" / "lgtm.json").read_text())
    assert set(metrics) == {"lgtm", "baseline"} and metrics["baseline"]["step"] == 4
    weights = {name: (out / name / "model.safetensors").read_bytes() for name in runs}
    # trained in turn instead: the same weights (a run's result does not depend on the pool)
    stage_params(tiny_stage_params(tmp_path, **{"lgtm.runs": runs, "compute.processes.train_lgtm": 1,
                                                  "evaluate.variants": ["lgtm", "baseline"],
                                                  "paths.lgtm": "out/lgtm_in_turn"}))
    train_lgtm.main()
    assert {name: (tmp_path / "out" / "lgtm_in_turn" / name / "model.safetensors").read_bytes()
            for name in runs} == weights
    # in turn, with a run added: the finished runs resume at their last step (no training step), same weights
    steps: list[str] = []
    original = lgtm_train.Trainer.train_step
    monkeypatch.setattr(lgtm_train.Trainer, "train_step",
                        lambda self, batch: (steps.append(self.out_dir.name), original(self, batch))[1])
    runs["lgtm_seed1"] = {"variant": "lgtm", "seed": 1}
    stage_params(tiny_stage_params(tmp_path, **{"lgtm.runs": runs, "compute.processes.train_lgtm": 1,
                                                  "evaluate.variants": ["lgtm", "baseline"]}))
    train_lgtm.main()
    assert set(steps) == {"lgtm_seed1"} and len(steps) == 4
    assert {name: (out / name / "model.safetensors").read_bytes() for name in ("lgtm", "baseline")} == weights

"""The ablation switches of LGTM (no full-body attention, no SmoothNet) and the MDM-style whole-body baseline:
each drops exactly its component, keeps padding out of valid outputs, trains and reloads through the same code."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from models.baseline import WholeBodyDenoiser, sinusoidal_positions
from models.diffusion import lengths_to_mask, pack_parts, sample
from models.lgtm import LGTM, LGTMConfig, build_denoiser, count_parameters, load_lgtm
from models.lgtm_train import TrainConfig, train
from motion.core.parts import PART_DIMS, PART_NAMES, TEXT_SLOTS
from motion.core.sampling import SamplingConfig
from tests.support.lgtm import TINY, make_corpus, make_dataset

torch.set_num_threads(1)

VARIANTS = {
    "lgtm": TINY,
    "no_optimizer": dataclasses.replace(TINY, full_body_attention=False),
    "no_smoothnet": dataclasses.replace(TINY, smoothnet=False),
    "whole_body": dataclasses.replace(TINY, architecture="whole_body", baseline_layers=2),
}


def _inputs(cfg: LGTMConfig, lengths: list[int], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    batch = len(lengths)
    x = {p: torch.randn(batch, cfg.window, PART_DIMS[p], generator=g) for p in PART_NAMES}
    t = torch.randint(0, 1000, (batch,), generator=g)
    text = torch.randn(batch, len(TEXT_SLOTS), cfg.text_dim, generator=g)
    return x, t, text, lengths_to_mask(torch.tensor(lengths), cfg.window)


def _model(cfg: LGTMConfig) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_denoiser(cfg).eval()


def test_each_ablation_removes_exactly_its_component() -> None:
    full = set(LGTM(TINY).state_dict())
    no_optimizer = set(build_denoiser(VARIANTS["no_optimizer"]).state_dict())
    no_smoothnet = set(build_denoiser(VARIANTS["no_smoothnet"]).state_dict())
    assert {k.split(".")[1] for k in full - no_optimizer} == {"transformer", "text_adapter"}
    assert all(k.startswith("full_body_optimizer.") for k in full - no_optimizer)
    assert {k.split(".")[1] for k in full - no_smoothnet} == {"smoothnet"}
    assert no_optimizer < full and no_smoothnet < full


def test_the_full_model_and_its_config_json_are_unchanged_by_the_switches() -> None:
    assert "architecture" not in TINY.to_dict() and "smoothnet" not in TINY.to_dict()
    assert VARIANTS["whole_body"].to_dict()["architecture"] == "whole_body"
    assert LGTMConfig.from_dict(VARIANTS["no_smoothnet"].to_dict()) == VARIANTS["no_smoothnet"]
    with pytest.raises(ValueError, match="architecture must be one of"):
        LGTMConfig(architecture="mdm")


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_padded_frames_and_batch_neighbours_do_not_change_valid_outputs(name: str) -> None:
    cfg = VARIANTS[name]
    model = _model(cfg)
    x, t, text, mask = _inputs(cfg, [13, 20])
    out = model(x, t, text, mask)
    garbage = {p: torch.where(mask[..., None], v, 100 * torch.randn_like(v)) for p, v in x.items()}
    out_garbage = model(garbage, t, text, mask)
    alone = model({p: v[:1] for p, v in x.items()}, t[:1], text[:1], mask[:1])
    for p in PART_NAMES:
        assert out[p].shape == (2, cfg.window, PART_DIMS[p])
        valid = mask[..., None].expand_as(out[p])
        torch.testing.assert_close(out[p][valid], out_garbage[p][valid], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out[p][0, :13], alone[p][0, :13], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, whole_matters, parts_matter", [
    ("lgtm", True, True), ("no_optimizer", False, True), ("whole_body", True, False)])
def test_which_text_latents_each_variant_reads(name: str, whole_matters: bool, parts_matter: bool) -> None:
    cfg = VARIANTS[name]
    model = _model(cfg)
    x, t, text, mask = _inputs(cfg, [24, 24])
    base = pack_parts(model(x, t, text, mask))
    whole, parts = text.clone(), text.clone()
    whole[:, 0] += 1.0
    parts[:, 1:] += 1.0
    assert (not torch.allclose(base, pack_parts(model(x, t, whole, mask)))) == whole_matters
    assert (not torch.allclose(base, pack_parts(model(x, t, parts, mask)))) == parts_matter
    assert not torch.allclose(base, pack_parts(model(x, t + 1, text, mask)))  # every variant reads the timestep


def test_the_baseline_has_about_lgtms_parameter_count_at_the_paper_settings() -> None:
    paper = LGTMConfig()
    lgtm = count_parameters(LGTM(paper))
    baseline = count_parameters(WholeBodyDenoiser(paper))
    print(f"paper settings: LGTM {lgtm:,} parameters, whole-body baseline {baseline:,} ({baseline / lgtm:.2f}x)")
    assert 0.8 < baseline / lgtm < 1.25


def test_sinusoidal_positions_are_the_transformer_table() -> None:
    table = sinusoidal_positions(5, 8)
    assert torch.allclose(table[0], torch.tensor([0.0, 1.0] * 4))
    assert torch.allclose(table[3, 0], torch.sin(torch.tensor(3.0))) and table.shape == (5, 8)


@pytest.mark.parametrize("name", ["no_optimizer", "whole_body"])
def test_variants_train_reload_and_sample_through_the_lgtm_code(tmp_path: Path, name: str) -> None:
    cfg = VARIANTS[name]
    ids = [f"{i:06d}" for i in range(4)]
    paths = make_corpus(tmp_path / "data", num_motions=4)
    data = make_dataset(paths, ids, cfg.window)
    train_cfg = TrainConfig(batch_size=4, max_steps=120, lr=3e-3, warmup_steps=5, val_every=120, checkpoint_every=120,
                            log_every=5, seed=3)
    train(cfg, train_cfg, data, data, tmp_path / "run", progress=False)
    curve = (tmp_path / "run" / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()[1:]
    losses = [float(line.split("\t")[-1]) for line in curve]
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3  # it learns
    model = load_lgtm(tmp_path / "run")
    assert type(model) is type(build_denoiser(cfg)) and model.cfg == cfg
    out = sample(model, torch.randn(2, len(TEXT_SLOTS), cfg.text_dim), torch.tensor([24, 9]),
                 SamplingConfig("ddim", 3, 0.0, 1.0), generator=torch.Generator().manual_seed(0))
    assert set(out) == set(PART_NAMES) and all(torch.isfinite(v).all() for v in out.values())

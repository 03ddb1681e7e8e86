"""TMR model: encoder shapes and masking, loss terms on hand-made cases, save/load round trip."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.tmr import TMR, TMRConfig, filtered_negatives, info_nce, kl_divergence, load_tmr, read_tmr_config, save_tmr
from motion.core.errors import DataError
from motion.core.parts import PART_NAMES

TINY = dict(latent_dim=16, ff_size=32, num_layers=1, num_heads=2)


def tiny_model(seed: int = 0) -> TMR:
    torch.manual_seed(seed)
    return TMR(TMRConfig(motion_dim=12, token_dim=8, **TINY)).eval()


def test_kl_is_zero_for_identical_gaussians_and_matches_closed_form():
    mu, logvar = torch.randn(4, 5), torch.randn(4, 5)
    assert kl_divergence((mu, logvar), (mu, logvar)).item() == pytest.approx(0.0, abs=1e-7)
    # KL(N(1, 1) || N(0, 1)) = 1/2 per dim
    q = (torch.ones(3, 2), torch.zeros(3, 2))
    p = (torch.zeros(3, 2), torch.zeros(3, 2))
    assert kl_divergence(q, p).item() == pytest.approx(0.5)
    # KL(N(0, e^2) || N(0, 1)) = (e^2 - 1 - 2) / 2
    q = (torch.zeros(1, 1), torch.full((1, 1), 2.0))
    assert kl_divergence(q, p).item() == pytest.approx((math.e ** 2 - 3) / 2)


def test_info_nce_matches_cross_entropy_by_hand():
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    m = torch.tensor([[1.0, 0.1], [0.2, 1.0], [0.7, 0.8]])
    logits = F.normalize(t, dim=1) @ F.normalize(m, dim=1).T / 0.1
    expected = 0.0
    for mat in (logits, logits.T):
        expected += sum(-torch.log_softmax(mat[i], 0)[i] for i in range(3)) / 3 / 2
    assert info_nce(t, m, 0.1).item() == pytest.approx(float(expected), rel=1e-5)


def test_info_nce_drops_negatives_with_similar_captions():
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    m = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    sentences = F.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.05], [0.0, 1.0]]), dim=1)  # captions 0 ~ 1
    mask = filtered_negatives(sentences, 0.8)
    assert mask.tolist() == [[False, True, False], [True, False, False], [False, False, False]]
    filtered = info_nce(t, m, 0.1, sentences, 0.8)
    # by hand: with pairs (0,1) and (1,0) removed, only samples 0/1 vs 2 compete
    logits = F.normalize(t, dim=1) @ F.normalize(m, dim=1).T / 0.1
    logits[0, 1] = logits[1, 0] = float("-inf")
    labels = torch.arange(3)
    expected = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    assert filtered.item() == pytest.approx(expected.item(), rel=1e-6)
    assert filtered.item() < info_nce(t, m, 0.1).item()
    # threshold 0.8 means cosine > 0.6: a caption pair at cosine 0.5 stays a negative
    assert not filtered_negatives(torch.tensor([[1.0, 0.0], [0.5, math.sqrt(0.75)]]), 0.8).any()


def test_encoders_shapes_and_padding_invariance():
    model = tiny_model()
    x = torch.randn(2, 7, 12)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    mu = model.encode_motion(x, mask)
    assert mu.shape == (2, 16)
    garbage = x.clone()
    garbage[1, 4:] = 100.0  # padded frames must not matter
    assert torch.allclose(model.encode_motion(garbage, mask), mu, atol=1e-5)
    assert torch.allclose(model.encode_motion(x[1:, :4], mask[1:, :4]), mu[1:], atol=1e-5)
    tokens, tmask = torch.randn(3, 5, 8), torch.ones(3, 5, dtype=torch.bool)
    assert model.encode_text(tokens, tmask).shape == (3, 16)
    decoded = model.motion_decoder(mu, mask)
    assert decoded.shape == (2, 7, 12) and decoded[1, 4:].abs().sum() == 0


def test_losses_are_finite_and_weighted():
    model = tiny_model()
    batch = {"motion": torch.randn(4, 6, 12), "motion_mask": torch.ones(4, 6, dtype=torch.bool),
             "text": torch.randn(4, 3, 8), "text_mask": torch.ones(4, 3, dtype=torch.bool),
             "sentence": F.normalize(torch.randn(4, 5), dim=1)}
    out = model.losses(batch, sample=False)
    cfg = model.cfg
    total = (cfg.lambda_recons * out["recons"] + cfg.lambda_kl * out["kl"] + cfg.lambda_latent * out["latent"]
             + cfg.lambda_contrastive * out["contrastive"])
    assert all(torch.isfinite(v) for v in out.values())
    assert out["loss"].item() == pytest.approx(total.item(), rel=1e-6)


def test_save_load_round_trip(tmp_path):
    model = tiny_model(seed=3)
    save_tmr(model, tmp_path / "m", extra={"name": "right_arm"})
    loaded = load_tmr(tmp_path / "m")
    assert not loaded.training and loaded.cfg == model.cfg
    assert read_tmr_config(tmp_path / "m")["name"] == "right_arm"
    x, mask = torch.randn(2, 5, 12), torch.ones(2, 5, dtype=torch.bool)
    assert torch.equal(loaded.encode_motion(x, mask), model.encode_motion(x, mask))
    with pytest.raises(DataError, match="config"):
        load_tmr(tmp_path / "missing")


def test_part_study_groups_and_two_way_accuracy():
    import numpy as np

    from models.tmr_eval import pair_study, study_groups

    idle = {p: "idle" for p in PART_NAMES}
    actions = {"a": {**idle, "right_arm": "wave"}, "b": {**idle, "right_arm": "punch"},
               "c": {**idle, "right_arm": "wave", "left_leg": "kick"}}
    groups = study_groups(actions, "right_arm")
    assert groups["right_arm"] == [("a", "b"), ("b", "c")] and groups["left_leg"] == [("a", "c")]
    assert study_groups(actions, "whole_body")["left_leg"] == [("a", "c")]
    # an encoder that only sees the right arm: latents by right-arm action, texts equal to them
    wave, punch = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    latents = np.stack([wave, punch, wave])
    out = pair_study(["a", "b", "c"], latents, latents, groups)
    assert out["right_arm"] == {"pairs": 2, "accuracy": 100.0, "motion_cosine": 0.0}
    assert out["left_leg"] == {"pairs": 1, "accuracy": 50.0, "motion_cosine": 1.0}  # ties: cannot tell apart
    assert "head" not in out

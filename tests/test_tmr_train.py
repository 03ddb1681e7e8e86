"""TMR data and training: segments, crops, batches, a tiny training that learns, exact resume."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.tmr import TMRConfig
from models.tmr_train import CHECKPOINT_FILE, TrainConfig, fit_tmr
from motion.core.errors import DataError
from motion.datasets import SpanRule, collate_text_motion, epoch_indices, first_caption_indices, load_text_motion
from tests.support.tmr import FakeEmbeddings, make_fake_data

MODEL = dict(latent_dim=32, ff_size=64, num_layers=1, num_heads=2, dropout=0.1)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return make_fake_data(tmp_path_factory.mktemp("tmr"))


def datasets(fake, name="whole_body", max_frames=40):
    features, texts = fake
    emb = FakeEmbeddings()
    train = load_text_motion(features, texts, emb, name, "train", max_frames=max_frames, random_crop=True, seed=1)
    val = load_text_motion(features, texts, emb, name, "val", max_frames=max_frames)
    return train, val


def test_span_rules():
    tmr, lgtm = SpanRule("tmr", 0, None), SpanRule("lgtm", 40, 200)
    assert tmr.frames(0.0, 0.0, 50) == lgtm.frames(0.0, 0.0, 50) == (0, 50)
    assert tmr.frames(0.5, 1.5, 50) == lgtm.frames(0.5, 1.5, 50) == (10, 30)
    assert tmr.frames(1.0, 9.0, 50) == lgtm.frames(1.0, 9.0, 50) == (20, 50)
    assert tmr.frames(1.0, 0.0, 50) == (0, 50)  # TMR: an end of 0 is the whole clip
    assert lgtm.frames(1.0, 0.0, 50) == (20, 0)  # LGTM: only 0 and 0 is, so this span is empty and dropped
    assert tmr.frames(3.0, 4.0, 50) == (50, 50) and lgtm.frames(3.0, 4.0, 50) == (60, 50)
    assert SpanRule("tmr", 40, 200).keeps(200) and not lgtm.keeps(200)  # TMR's bound is inclusive, LGTM's not
    assert lgtm.keeps(40) and not lgtm.keeps(39) and not tmr.keeps(0)
    with pytest.raises(ValueError, match="protocol"):
        SpanRule("t2m", 0, None)


def test_dataset_normalises_parts_and_pads(fake):
    train, _ = datasets(fake, "right_arm")
    assert len(train) == 24 and train.motion_dim == 48
    assert [s.seg_id for s in train.segments[:2]] == ["000000_0", "000000_1"]
    assert train.segments[0].text == "right arm waves"
    stacked = np.concatenate([train.motion(i) for i in first_caption_indices(train.segments)])
    assert abs(stacked.mean()) < 0.2 and 0.7 < stacked.std() < 1.3  # normalised with train stats
    assert all(len(train.motion(i)) <= 40 for i in range(len(train)))
    batch = collate_text_motion([train[0], train[3]])
    assert batch["motion"].shape[0] == 2 and batch["motion"].shape[2] == 48
    assert batch["motion_mask"].sum(1).tolist() == [len(train.motion(0)), len(train.motion(3))]
    assert batch["text"].shape[2] == 16 and batch["sentence"].shape == (2, 16)


def test_crops_are_seeded_per_epoch(fake):
    train, _ = datasets(fake, max_frames=20)
    train.set_epoch(0)
    a = train.motion(5)
    assert np.array_equal(a, train.motion(5)) and len(a) == 20
    crops = set()
    for epoch in range(6):
        train.set_epoch(epoch)
        crops.add(train.motion(5)[0, 0].item())
    assert len(crops) > 1


def test_epoch_indices_one_caption_per_motion(fake):
    train, _ = datasets(fake)
    order = epoch_indices(train.segments, epoch=0, seed=3)
    assert len(order) == 12 and len({train.segments[i].motion_id for i in order}) == 12
    assert order == epoch_indices(train.segments, epoch=0, seed=3)
    assert order != epoch_indices(train.segments, epoch=1, seed=3)
    assert sorted(epoch_indices(train.segments, 0, 3, one_per_motion=False)) == list(range(24))


def test_missing_inputs_raise_data_error(fake, tmp_path):
    features, texts = fake
    with pytest.raises(DataError, match="part_stats"):
        load_text_motion(tmp_path, texts, FakeEmbeddings(), "head", "train")
    with pytest.raises(ValueError, match="unknown TMR encoder"):
        load_text_motion(features, texts, FakeEmbeddings(), "tail", "train")


def run(fake, work, epochs, callback=None, seed=7):
    torch.set_num_threads(1)
    train, val = datasets(fake)
    cfg = TMRConfig(motion_dim=train.motion_dim, token_dim=16, **MODEL)
    tcfg = TrainConfig(epochs=epochs, batch_size=8, lr=3e-3, seed=seed, device="cpu", val_batch_size=4)
    return fit_tmr(cfg, tcfg, train, val, work, progress=False, epoch_callback=callback)


def test_tiny_training_loss_decreases_and_logs(fake, tmp_path):
    model, history = run(fake, tmp_path / "w", epochs=6)
    assert [row["epoch"] for row in history] == list(range(1, 7))
    assert history[-1]["val/loss"] < 0.95 * history[0]["val/loss"]  # deterministic (latent means, no dropout)
    assert history[-1]["train/recons"] < 0.95 * history[0]["train/recons"]
    assert not model.training
    live = tmp_path / "w" / "dvclive"
    assert (live / "metrics.json").is_file()
    assert (live / "plots" / "metrics" / "train" / "loss.tsv").is_file()
    assert (live / "plots" / "images" / "losses.png").stat().st_size > 1000
    assert (live / "plots" / "images" / "retrieval.png").is_file()


def test_resume_after_interruption_matches_uninterrupted(fake, tmp_path):
    full, full_history = run(fake, tmp_path / "full", epochs=4)

    def interrupt(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(fake, tmp_path / "cut", epochs=4, callback=interrupt)
    assert (tmp_path / "cut" / CHECKPOINT_FILE).is_file()
    resumed_epochs = []
    resumed, history = run(fake, tmp_path / "cut", epochs=4, callback=lambda e, r: resumed_epochs.append(e))
    assert resumed_epochs == [2, 3]
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert [r["train/loss"] for r in history] == [r["train/loss"] for r in full_history]
    tsv = (tmp_path / "cut" / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert len(tsv) == 1 + 4  # header + the four epochs, replayed ones included


def test_changed_settings_do_not_resume_a_stale_checkpoint(fake, tmp_path):
    run(fake, tmp_path / "w", epochs=1)
    seen = []
    run(fake, tmp_path / "w", epochs=2, seed=8, callback=lambda e, r: seen.append(e))
    assert seen == [0, 1]

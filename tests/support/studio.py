"""The studio's tests, benchmark and docs screenshots: a tiny trained workspace and a headless browser.

``make_studio_workspace`` writes, under one folder, everything ``python -m tools.studio`` reads through a
params file (the real params.yaml plus ``workspace_overrides``): plausible motions (forward kinematics of
swinging limbs, walking and turning) as HumanML3D features with Mean/Std, splits and part statistics;
captions and part texts (``part_texts.parquet`` and the LGTM annotation files); seven small TMRs and the
token features of every dataset text (``tests.support.tmr.write_tmr_folders``, the 8-d word vectors of
``FakeEncoder``); and a tiny LGTM trained for a few steps on those motions (random text latents, with text
dropout so guidance applies). Texts never seen need ``fake_encoder`` patched in as the embed_texts encoder
(``patch_encoder``).

``serve_workspace`` runs the studio of a params file in this process (on 127.0.0.1, any free port);
``headless_chromium`` starts Debian's chromium through /usr/bin/chromedriver with the page's console and
network logs enabled; ``require_browser`` skips a test without them (fails it in CI).
"""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from motion.core.kinematics import axis_angle_to_matrix, forward_kinematics
from motion.core.parts import PART_NAMES, TEXT_SLOTS
from motion.data.features import extract_features
from motion.datasets import feature_dims
from tests.support.lgtm import TINY, make_dataset
from tests.support.params import write_params
from tests.support.stores import write_caption_files, write_feature_store
from tests.support.tmr import FakeEncoder, write_tmr_folders

# ----------------------------------------------------------------------------- the fake workspace

ACTIONS = (("waves the right hand", "right_arm", 19), ("kicks with the left leg", "left_leg", 4),
           ("raises the left arm", "left_arm", 16), ("nods the head", "head", 12),
           ("walks forward", "right_leg", 2), ("bends the torso", "torso", 3))


def plausible_motion(index: int, frames: int) -> np.ndarray:
    """HumanML3D features (frames - 1, 263) of a body that sways, swings one part strongly and walks a little."""
    rng = np.random.default_rng(index)
    caption, _, joint = ACTIONS[index % len(ACTIONS)]
    t = np.linspace(0, 2 * np.pi, frames)[:, None, None]
    aa = 0.12 * np.sin(t + rng.uniform(0, 2 * np.pi, (1, 22, 3)))
    aa[:, joint, 0] += 0.9 * np.sin(2 * t[:, 0, 0] + index)
    aa[:, 0] = 0.0
    aa[:, 0, 1] = np.linspace(0, rng.uniform(-1, 1), frames)
    walk = 0.8 if "walk" in caption else 0.1
    trans = np.stack([np.zeros(frames), np.full(frames, 0.93), np.linspace(0, walk, frames)], axis=-1)
    return extract_features(forward_kinematics(axis_angle_to_matrix(aa), trans).astype(np.float32))


def fake_encoder(settings: Any = None) -> FakeEncoder:
    """The embed_texts encoder of the fake workspace (use as ``motion.text.embeddings.make_encoder``)."""
    return FakeEncoder()


def patch_encoder(monkeypatch: Any) -> None:
    """Make unseen texts encodable with the fake encoder (pytest's monkeypatch)."""
    import motion.text.embeddings as embeddings

    monkeypatch.setattr(embeddings, "make_encoder", fake_encoder)


def write_dataset(root: Path, num_motions: int) -> tuple[list[str], list[str]]:
    """features/, poses/texts.parquet, texts/ of ``num_motions`` motions; returns the motion ids and every text."""
    features, texts = root / "features", root / "texts"
    for folder in (features / "splits", texts):
        folder.mkdir(parents=True, exist_ok=True)
    rows, ids, annotations, all_texts, clips, files = [], [], {}, {"does nothing"}, {}, {}
    stacked = []
    for m in range(num_motions):
        mid = f"{m:06d}"
        caption, part, _ = ACTIONS[m % len(ACTIONS)]
        feats = plausible_motion(m, 41 + 4 * (m % 5))
        clips[mid] = feats
        stacked.append(feats)
        captions = [f"a person {caption}", f"someone {caption}"]
        files[mid] = "".join(f"{c}#x/NOUN#0.0#0.0\n" for c in captions)
        for c, text in enumerate(captions):
            row = {"seg_id": f"{mid}_{c}", "motion_id": mid, "caption_index": c, "caption": text,
                   "start": 0.0, "end": 0.0, "backend": "fake"}
            annotation = {}
            for p in PART_NAMES:
                own = caption if p == part else "does nothing"
                row[f"{p}_action"] = caption.split()[0] if p == part else "idle"
                row[f"{p}_text"] = own
                annotation[p] = {"action": row[f"{p}_action"], "text": own}
                all_texts.add(own)
            annotations[f"{mid}_{c}"] = annotation
            all_texts.add(text)
            rows.append(row)
        ids.append(mid)
    write_feature_store(features, clips)
    write_caption_files(root / "poses", files)
    pd.DataFrame(rows).to_parquet(texts / "part_texts.parquet", index=False)
    (texts / "body_part_annotations.json").write_text(json.dumps(annotations))
    cut = max(1, num_motions // 4)
    for split, split_ids in (("train", ids[:-cut]), ("val", ids[-cut:]), ("test", ids[-cut:]), ("all", ids)):
        (features / "splits" / f"{split}.txt").write_text("".join(i + "\n" for i in split_ids))
    data = np.concatenate(stacked)
    np.save(features / "Mean.npy", data.mean(0).astype(np.float32))
    np.save(features / "Std.npy", (data.std(0) + 1e-2).astype(np.float32))
    stats = {}
    for name in TEXT_SLOTS:
        dims = feature_dims(name)
        part = data if dims is None else data[:, dims]
        stats[f"{name}_mean"], stats[f"{name}_std"] = part.mean(0), part.std(0)
    np.savez(features / "part_stats.npz", **stats)
    return ids, sorted(all_texts)


def train_tiny_lgtm(root: Path, ids: list[str], window: int, steps: int) -> None:
    """A tiny LGTM trained for ``steps`` steps on the fake motions (random text latents, 10% text dropout)."""
    from dataclasses import replace

    from models.lgtm_train import TrainConfig, train

    paths = {"features": root / "features", "texts": root / "poses" / "texts.parquet",
             "parts": root / "texts" / "body_part_annotations.json"}
    data = make_dataset(paths, ids, window)
    cfg = TrainConfig(batch_size=4, max_steps=steps, lr=3e-3, warmup_steps=2, val_every=steps,
                      checkpoint_every=steps, log_every=steps, seed=3, cond_drop_prob=0.1)
    train(replace(TINY, window=window), cfg, data, None, root / "lgtm" / "lgtm", progress=False)  # run lgtm


def make_studio_workspace(root: str | Path, num_motions: int = 12, window: int = 40, train_steps: int = 10,
                          evaluate_report: bool = True) -> Path:
    """Write the whole fake workspace under ``root``; return its params.yaml."""
    root = Path(root)
    ids, texts = write_dataset(root, num_motions)
    write_tmr_folders(root, texts)
    train_tiny_lgtm(root, ids, window, train_steps)
    if evaluate_report:
        (root / "evaluate").mkdir(exist_ok=True)
        (root / "evaluate" / "report.md").write_text("# Evaluation\n\n| metric | value |\n|---|---|\n| FID | 1.0 |\n")
    return write_params(root, workspace_overrides(root))


def workspace_overrides(root: Path) -> dict[str, Any]:
    """The dotted overrides of the real params.yaml that point the studio at the workspace under ``root``."""
    folders = ("features", "texts", "embeddings", "tmr", "lgtm", "cache", "evaluate", "prompt_study", "poses", "assets")
    return {**{f"paths.{name}": str(root / name) for name in folders}, "split_texts.backend": "rules",
            "lgtm.text_latents": "random", "compute.device": "cpu", "compute.threads.prompt_study": 1,
            "lgtm.sampling": {"sampler": "dpmsolver++", "steps": 20, "eta": 0.0, "guidance_scale": 1.0,
                          "timestep_spacing": "trailing"}}


def shared_workspace(factory: Any) -> Path:
    """One fake workspace per test session (pytest's tmp_path_factory), built on first use."""
    root = Path(factory.getbasetemp()) / "studio_workspace"
    params = root / "params.yaml"
    if not params.is_file():
        make_studio_workspace(root)
    return params


# ----------------------------------------------------------------------------- the browser

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")


def browser_available() -> str:
    """Empty when chromium, chromedriver and selenium are all there, else why not."""
    if not CHROMEDRIVER.exists() or not CHROMIUM.exists():
        return "chromium/chromium-driver are not installed (make browser)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements.txt)"
    return ""


def require_browser() -> None:
    """Skip the calling test when the browser is missing, except in CI (``$CI`` set), where that fails it."""
    reason = browser_available()
    if reason and os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser tests", pytrace=False)
    if reason:
        pytest.skip(reason)


@contextmanager
def serve_workspace(params_path: Path, out: Path, video: bool = True, queue: int = 4) -> Iterator[tuple[str, Any]]:
    """The studio of ``params_path`` served on 127.0.0.1 in a thread; yields (base URL, Studio)."""
    from stages.settings import load_settings
    from tools.studio.engine import Engine
    from tools.studio.server import Studio, make_server

    engine = Engine.from_settings(load_settings(path=params_path), "cpu")
    engine.check()
    engine.load()
    studio = Studio(engine, out, queue_capacity=queue, video=video)
    server = make_server(studio, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", studio
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def headless_chromium(width: int = 1500, height: int = 1100) -> Iterator[Any]:
    """A headless Chromium WebDriver with browser (console) and performance (network) logs."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync", "--disable-default-apps", "--disable-extensions", "--no-proxy-server",
                 "--disable-features=Translate,OptimizationHints,MediaRouter"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: Any) -> list[str]:
    """Every URL the page requested since the last call (from the performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls

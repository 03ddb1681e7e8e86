"""Studio latency and viewer speed in headless Chromium (Debian chromium + chromium-driver, selenium).

1. Time from the click on "Generate" to the first frame drawn in the viewer for a 3 s (60-frame) motion with
   DPM-Solver++ 20 steps on the CPU model, measured inside the page (performance.now() at the click until the
   viewer's frame counter is set). The model is the trained one of ``--params`` when its folder exists
   (``make repro``), else an untrained LGTM with the architecture of the params file's ``lgtm.model`` (its
   profile) in a fake workspace (sampling time does not depend on the weights).
2. The viewer's frame rate on a 196-frame motion: animation frames per second and canvas frames drawn per
   second over a few seconds (target 60 fps), and the cost of one draw, with 1 and with 4 viewers side by side.

    python -m benchmarks.bench_studio [--params params.yaml] [--runs 3] [--seconds 4]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CLICK_TO_FIRST_FRAME = """
const done = arguments[arguments.length - 1];
const counter = () => document.querySelector('#sample-0 .frame-counter');
clearViewers(document.getElementById('results'));  // the previous run's viewer must not count
const start = performance.now();
document.getElementById('generate').click();
function poll() {
  const c = counter();
  if (c && Number(c.dataset.frame) >= 0) { done(performance.now() - start); return; }
  if (performance.now() - start > 600000) { done(-1); return; }
  requestAnimationFrame(poll);
}
requestAnimationFrame(poll);
"""

FRAME_RATE = """
const [motion, copies, seconds] = [arguments[0], arguments[1], arguments[2]];
const done = arguments[arguments.length - 1];
clearViewers(document.getElementById('results'));
const viewers = [];
for (let i = 0; i < copies; i++) {
  viewers.push(viewerCard(document.getElementById('results'), 'bench ' + i, motion, null, 'bench-' + i).viewer);
}
const drawStart = performance.now();
for (let i = 0; i < 200; i++) {
  viewers[0].time = i % motion.frames; viewers[0].frame = -1; viewers[0].step(0); viewers[0].draw();
}
const drawMs = (performance.now() - drawStart) / 200;
setTimeout(() => {
  const t0 = performance.now(), ticks0 = StudioViewers.ticks, drawn0 = StudioViewers.drawn;
  setTimeout(() => {
    const dt = (performance.now() - t0) / 1000;
    done({fps: (StudioViewers.ticks - ticks0) / dt, draws_per_s: (StudioViewers.drawn - drawn0) / dt / copies,
          draw_ms: drawMs, frames: motion.frames});
  }, seconds * 1000);
}, 500);
"""


def cpu_model_workspace(root: Path, settings: Any) -> Path:
    """The fake workspace with an untrained LGTM of the settings' ``lgtm.model`` architecture (not the tiny one)."""
    from dataclasses import asdict

    import torch

    from models.checkpoint import save_model
    from models.lgtm import LGTM, LGTMConfig
    from motion.core.io import write_json
    from tests.support.studio import make_studio_workspace

    path = make_studio_workspace(root, train_steps=1)
    model_cfg = LGTMConfig.from_dict({**asdict(settings.lgtm.model), "dropout": 0.0})
    torch.manual_seed(0)
    model = LGTM(model_cfg).eval()
    save_model(model, root / "lgtm" / "model.safetensors")
    write_json(root / "lgtm" / "config.json", {"model": model_cfg.to_dict(), "train": {"cond_drop_prob": 0.0}})
    return path


def motion_of(frames: int) -> dict[str, Any]:
    """A plausible motion of ``frames`` frames as the viewer's JSON."""
    from motion.data.features import recover_from_ric
    from tests.support.studio import plausible_motion
    from tools.studio.server import joints_payload

    return joints_payload(recover_from_ric(plausible_motion(0, frames + 1).astype(np.float64)).astype(np.float32))


def main() -> None:
    """Run both measurements and print them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()

    import torch
    from selenium.webdriver.common.by import By

    import motion.text.embeddings as embeddings
    from stages.settings import load_settings
    from tests.support.studio import browser_available, fake_encoder, headless_chromium, serve_workspace

    reason = browser_available()
    if reason:
        raise SystemExit(f"bench_studio: {reason}")
    torch.set_num_threads(1)
    settings = load_settings(path=args.params)
    trained = Path(settings.pipeline_lgtm()) / "model.safetensors"
    with tempfile.TemporaryDirectory() as tmp:
        if trained.is_file():
            params_path, model = Path(args.params), f"trained ({settings.pipeline_lgtm()})"
        else:
            embeddings.make_encoder = fake_encoder  # the fake workspace's text encoder
            params_path = cpu_model_workspace(Path(tmp) / "ws", settings)
            model = f"untrained lgtm.model architecture of profile {settings.profile} (no {trained})"
        with serve_workspace(params_path, Path(tmp) / "out", video=True) as (base, studio), \
                headless_chromium() as driver:
            window = int(studio.info()["models"][0]["window"])
            driver.get(base + "/")
            driver.set_script_timeout(900)
            end = time.time() + 30
            while not driver.execute_script("return document.querySelectorAll('#model option').length"):
                if time.time() > end:
                    raise SystemExit("bench_studio: the page did not load")
                time.sleep(0.05)
            driver.find_element(By.CSS_SELECTOR, "#caption").send_keys("a person walks forward and waves")
            frames = min(60, window)
            for css, value in (("#length", str(frames)), ("#steps", "20"), ("#samples", "1")):
                driver.find_element(By.CSS_SELECTOR, css).clear()
                driver.find_element(By.CSS_SELECTOR, css).send_keys(value)
            driver.execute_script("document.getElementById('sampler').value = 'dpmsolver++'")
            latencies = []
            for run in range(args.runs):
                driver.execute_script(f"document.getElementById('seed').value = '{run}'")
                latencies.append(driver.execute_async_script(CLICK_TO_FIRST_FRAME))
                end = time.time() + 300
                while not driver.find_element(By.CSS_SELECTOR, "#progress-text").text.startswith(("done", "fail")):
                    if time.time() > end:
                        raise SystemExit("bench_studio: the generation did not finish")
                    time.sleep(0.05)
            rates = {copies: driver.execute_async_script(FRAME_RATE, motion_of(196), copies, args.seconds)
                     for copies in (1, 4)}
    print(json.dumps({
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s)",
        "model": model, "frames": frames, "sampler": "dpmsolver++", "steps": 20,
        "generate_to_first_frame_ms": {"runs": [round(x) for x in latencies],
                                       "median": round(statistics.median(latencies))},
        "viewer_196_frames": {f"{k}_viewer(s)": {key: round(v, 2) for key, v in r.items()} for k, r in rates.items()},
    }, indent=2))


if __name__ == "__main__":
    main()

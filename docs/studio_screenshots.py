"""Screenshots of the studio for docs/: ``python docs/studio_screenshots.py [--params params.yaml] [--out docs]``.

Uses the pipeline's trained models when ``paths.lgtm`` of the params file holds one (``make repro``); else a
tiny LGTM trained for ``--train-steps`` steps on the fake workspace of the tests (tests/support/studio.py), whose
motions are only plausible-looking, not text-faithful. The screenshot files say which in docs/studio.md.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def wait(condition, timeout: float = 120.0) -> None:  # noqa: ANN001
    end = time.time() + timeout
    while not condition():
        if time.time() > end:
            raise SystemExit("studio_screenshots: the page did not get there in time")
        time.sleep(0.1)


def main() -> None:
    """Generate two samples with an edited part text, search, and save two screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="docs")
    parser.add_argument("--train-steps", type=int, default=400)
    args = parser.parse_args()

    import torch
    from selenium.webdriver.common.by import By

    import motion.text.embeddings as embeddings
    from stages.settings import load_settings
    from tests.support.studio import fake_encoder, headless_chromium, make_studio_workspace, serve_workspace

    torch.set_num_threads(1)
    settings = load_settings(path=args.params)
    with tempfile.TemporaryDirectory() as tmp:
        if (Path(settings.pipeline_lgtm()) / "model.safetensors").is_file():
            params_path = Path(args.params)
        else:
            embeddings.make_encoder = fake_encoder
            params_path = make_studio_workspace(Path(tmp) / "ws", window=60, train_steps=args.train_steps)
        with serve_workspace(params_path, Path(tmp) / "out") as (base, _), \
                headless_chromium(1500, 1500) as driver:
            find = lambda css: driver.find_element(By.CSS_SELECTOR, css)  # noqa: E731
            driver.get(base + "/")
            wait(lambda: driver.execute_script("return document.querySelectorAll('#model option').length"))
            find("#caption").send_keys("a person waves the right hand")
            find("#split").click()
            wait(lambda: find("#part-right_arm").get_attribute("value"))
            find("#part-head").send_keys("nods the head")
            for css, value in (("#length", "60"), ("#steps", "20"), ("#samples", "2")):
                find(css).clear()
                find(css).send_keys(value)
            find("#generate").click()
            wait(lambda: find("#progress-text").text.startswith("done"))
            time.sleep(1.0)
            driver.save_screenshot(str(Path(args.out) / "studio_generate.png"))
            find("#search-text").send_keys("someone kicks with the left leg")
            find("#search-encoder").send_keys("left leg")
            find("#search").click()
            wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#search-results li.search-result"))
            find("#search-results li.search-result button.play-result").click()
            wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#dataset-viewer canvas"))
            driver.execute_script("document.getElementById('search-panel').scrollIntoView()")
            time.sleep(1.0)
            driver.save_screenshot(str(Path(args.out) / "studio_search.png"))
    print(f"wrote {args.out}/studio_generate.png and {args.out}/studio_search.png")


if __name__ == "__main__":
    main()

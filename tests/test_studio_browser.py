"""The studio in a real browser: headless Chromium (Debian) driven by selenium, on a tiny trained fake model.

Skipped where chromium, chromium-driver or selenium is missing, except in CI (``$CI`` set): there it fails.
"""
from __future__ import annotations

import io
import json
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.studio import (
    headless_chromium,
    patch_encoder,
    requested_urls,
    require_browser,
    serve_workspace,
    shared_workspace,
)

CAPTION = "a person waves the right hand"


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy."""
    end = time.time() + timeout
    while time.time() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str, Any]]:
    require_browser()  # skipped without chromium/selenium, except in CI (the Makefile's browser target installs it)
    root = tmp_path_factory.mktemp("studio")
    with pytest.MonkeyPatch.context() as monkeypatch:
        patch_encoder(monkeypatch)
        params = shared_workspace(tmp_path_factory)
        with serve_workspace(params, root / "out") as (base, studio), headless_chromium() as driver:
            driver.get(base + "/")
            yield driver, base, studio


def element_value(driver: Any, css: str) -> str:
    return driver.execute_script(f"return document.querySelector({css!r})?.value || ''")


def frame_of(driver: Any, css: str) -> int:
    return int(driver.execute_script(f"return document.querySelector({css!r})?.dataset.frame ?? '-1'"))


def console_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_generate_watch_download_search(page: tuple[Any, str, Any], tmp_path: Path) -> None:
    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tests.oracles.bvh_reader import read_bvh

    driver, base, studio = page
    find = lambda css: driver.find_element(By.CSS_SELECTOR, css)  # noqa: E731
    wait_for(lambda: driver.execute_script("return document.querySelectorAll('#model option').length"), what="info")
    assert find("#guidance").is_enabled()  # the fake model was trained with text dropout
    find("#caption").send_keys(CAPTION)
    find("#split").click()
    wait_for(lambda: element_value(driver, "#part-right_arm"), what="the part texts")
    assert "wave" in element_value(driver, "#part-right_arm") and element_value(driver, "#part-left_leg") == ""
    assert "rules" in find("#split-note").text
    head = find("#part-head")
    head.clear()
    head.send_keys("nods the head slowly")
    for css, value in (("#length", "30"), ("#steps", "5"), ("#samples", "2")):
        find(css).clear()
        find(css).send_keys(value)
    unit = Select(find("#length-unit"))
    unit.select_by_value("seconds")
    assert element_value(driver, "#length") == "1.5"  # 30 frames at 20 fps
    unit.select_by_value("frames")
    assert element_value(driver, "#length") == "30"
    find("#generate").click()
    wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#results .viewer-card")) == 2, what="two viewers")
    wait_for(lambda: frame_of(driver, "#sample-0 .frame-counter") >= 0, what="the first frame")
    first = frame_of(driver, "#sample-0 .frame-counter")
    wait_for(lambda: frame_of(driver, "#sample-0 .frame-counter") != first, what="the animation", timeout=10)
    wait_for(lambda: find("#progress-text").text.startswith("done"), what="the generation", timeout=60)
    assert find("#progress-text").text == "done: 2 sample(s), 10 steps"
    assert "nods the head slowly" in find("#sample-0 .part-texts").text

    # pause holds the frame, the scrub bar seeks, zoom and a drag move the camera, speed changes the clock
    viewer = "studioState.viewers[0]"
    find("#sample-0 button.play").click()
    held = frame_of(driver, "#sample-0 .frame-counter")
    time.sleep(0.3)
    assert frame_of(driver, "#sample-0 .frame-counter") == held and find("#sample-0 button.play").text == "play"
    driver.execute_script("const s = document.querySelector('#sample-0 .scrub'); s.value = '7';"
                          "s.dispatchEvent(new Event('input'));")
    wait_for(lambda: frame_of(driver, "#sample-0 .frame-counter") == 7, what="the scrub bar")
    distance, yaw = driver.execute_script(f"return [{viewer}.distance, {viewer}.yaw]")
    find("#sample-0 .controls button[title='zoom in']").click()
    ActionChains(driver).drag_and_drop_by_offset(find("#sample-0 canvas"), 80, 0).perform()
    assert driver.execute_script(f"return {viewer}.distance") < distance
    assert driver.execute_script(f"return {viewer}.yaw") != yaw
    Select(find("#sample-0 select.speed")).select_by_value("2")
    assert driver.execute_script(f"return {viewer}.speed") == 2
    find("#sample-0 button.play").click()

    image = Image.open(io.BytesIO(find("#sample-0 canvas").screenshot_as_png)).convert("RGB")
    pixels = np.asarray(image).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 20 and pixels.std() > 5  # grid and a coloured skeleton, not blank

    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#sample-0 a.download-motion-mp4"), what="the video")
    bvh_url = find("#sample-0 a.download-motion-bvh").get_attribute("href")
    assert bvh_url.startswith(base + "/files/")
    path = tmp_path / "motion.bvh"
    path.write_bytes(urllib.request.urlopen(bvh_url).read())
    assert read_bvh(path)[3].shape == (30, 22, 3)
    parts = json.loads(urllib.request.urlopen(find("#sample-1 a.download-parts-json").get_attribute("href")).read())
    assert parts["parts"]["head"] == "nods the head slowly" and parts["hand_set"] == ["head"] and parts["seed"] == 1
    assert parts["parts"]["left_leg"] == "does nothing" and parts["steps"] == 5 and parts["sampler"] == "dpmsolver++"

    find("#search-text").send_keys("a person kicks with the left leg")
    find("#search").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#search-results li.search-result"), what="results")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#search-results li.search-result")) == 5
    find("#search-results li.search-result button.play-result").click()
    wait_for(lambda: frame_of(driver, "#dataset-viewer .frame-counter") >= 0, what="the dataset motion")
    seen = frame_of(driver, "#dataset-viewer .frame-counter")
    wait_for(lambda: frame_of(driver, "#dataset-viewer .frame-counter") != seen, what="it to play", timeout=10)
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#gallery li.gallery-item"), what="the gallery")

    # the step count ticks while a longer generation runs
    for css, value in (("#steps", "100"), ("#samples", "1")):
        find(css).clear()
        find(css).send_keys(value)
    find("#generate").click()
    ticking = wait_for(lambda: re.fullmatch(r"sampling: step (\d+) / 100", find("#progress-text").text),
                       what="a step count")
    assert 0 <= int(ticking.group(1)) < 100
    wait_for(lambda: find("#progress-text").text == "done: 1 sample(s), 100 steps", what="the long run", timeout=120)
    assert console_errors(driver) == []

    # bad input: a clear message in the page, no stack trace
    caption = find("#caption")
    caption.clear()
    find("#generate").click()
    wait_for(lambda: find("#error").is_displayed(), what="the error message")
    assert "caption is empty" in find("#error").text and "Traceback" not in driver.page_source
    caption.send_keys("<img src=x onerror=alert(1)> waves")
    find("#split").click()
    wait_for(lambda: not find("#error").is_displayed(), what="the error to clear")
    find("#part-torso").send_keys("x" * 250)
    find("#generate").click()
    wait_for(lambda: "limit is 200" in find("#error").text, what="the part-text limit")
    assert not driver.find_elements(By.CSS_SELECTOR, "img[src=x]")  # typed text is never HTML
    # the only console lines after the bad requests are Chromium's notes on the two 400 answers
    assert all("status of 400" in m for m in console_errors(driver))

    urls = requested_urls(driver)
    assert urls and all(u.startswith(base + "/") for u in urls), [u for u in urls if not u.startswith(base)]
    assert studio.worker.max_running == 1

"""Helpers shared by the studio's browser test, its benchmark and the docs screenshots.

``serve_workspace`` runs the studio of a params file in this process (on 127.0.0.1, any free port);
``headless_chromium`` starts Debian's chromium through /usr/bin/chromedriver with the page's console and
network logs enabled.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml

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


@contextmanager
def serve_workspace(params_path: Path, out: Path, video: bool = True, queue: int = 4) -> Iterator[tuple[str, Any]]:
    """The studio of ``params_path`` served on 127.0.0.1 in a thread; yields (base URL, Studio)."""
    from tools.studio.engine import Engine
    from tools.studio.server import Studio, make_server

    engine = Engine(yaml.safe_load(Path(params_path).read_text()), "cpu")
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
    import json

    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls

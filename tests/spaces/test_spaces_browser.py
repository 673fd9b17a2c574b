"""Real-browser tests of the Gradio Spaces in ``spaces/``: each app is started on a loopback port, opened in
headless Chromium (Debian ``chromium`` + ``chromium-driver``) driven by selenium, used as a user would (set
inputs, click, wait) and checked for its output; one ``gradio_client`` call per app goes through its API; the
app is stopped after. A screenshot of each app is taken (written to ``docs/screenshots/<space>.png`` with
``TRUSTVL_UPDATE_SCREENSHOTS=1``).
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

gr = pytest.importorskip("gradio")
pytest.importorskip("selenium")
from gradio_client import Client  # noqa: E402
from PIL import Image  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SPACES = REPO / "spaces"
#: the README's screenshots are refreshed only when asked (TRUSTVL_UPDATE_SCREENSHOTS=1), so a test run leaves
#: the checkout clean; otherwise they go to a temporary folder
SCREENSHOTS = (
    REPO / "docs" / "screenshots"
    if os.environ.get("TRUSTVL_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="trustvl-screenshots-"))
)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
#: the slowest request of any app on a loaded 2-core machine, plus the page load
WAIT_S = 120

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver; .ci/run does)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load_app(space: str):
    """Import ``spaces/<space>/app.py`` as its own module (the Space's working directory is its folder)."""
    path = SPACES / space / "app.py"
    spec = importlib.util.spec_from_file_location(f"space_{space.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="trustvl_chromium_")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,1400",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class RunningSpace:
    def __init__(self, space: str):
        self.space = space
        self.module = _load_app(space)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> RunningSpace:
        self.module.demo.launch(
            prevent_thread_lock=True, server_name="127.0.0.1", server_port=self.port, quiet=True
        )
        return self

    def __exit__(self, *exc) -> None:
        self.module.demo.close()
        with socket.socket() as s:  # the port is free again: the server really stopped
            assert s.connect_ex(("127.0.0.1", self.port)) != 0


def _open(driver, url: str) -> None:
    driver.get(url)
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, "button"))


def _find(driver, selector: str):
    return _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, selector), selector)[0]


def _type(driver, elem_id: str, text: str) -> None:
    box = _find(driver, f"#{elem_id} textarea, #{elem_id} input")
    box.clear()
    box.send_keys(text)


def _set_number(driver, elem_id: str, value: float) -> None:
    """Set a slider through its number box, as a user typing a value."""
    box = _find(driver, f"#{elem_id} input[type=number]")
    box.clear()
    box.send_keys(str(value))
    box.send_keys("\n")


def _click(driver, elem_id: str) -> None:
    _find(driver, f"#{elem_id}").click()


def _wait(driver, condition: Callable, what: str):
    return WebDriverWait(driver, WAIT_S, poll_frequency=0.5).until(condition, message=f"waiting for {what}")


def _images(driver, elem_id: str) -> list:
    return [
        img
        for img in driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} img")
        if driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
    ]


def _screenshot(driver, space: str) -> Path:
    """Save a small PNG (< 200 KB) of the page: a full-page capture, downscaled and palette-quantised."""
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1280, min(max(int(height) + 40, 900), 2400))
    image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    image = image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.LANCZOS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{space}.png"
    for colors in (128, 64, 32):
        buffer = io.BytesIO()
        image.quantize(colors=colors).save(buffer, format="PNG", optimize=True)
        if buffer.tell() < 200_000:
            break
    path.write_bytes(buffer.getvalue())
    driver.set_window_size(1280, 1400)
    return path


def test_fairness_audit_space(browser):
    with RunningSpace("fairness-audit") as app:
        _open(browser, app.url)
        _type(browser, "prompt", "a photo of a pilot")
        _set_number(browser, "n-top", 6)
        _click(browser, "run-audit")
        table = _wait(
            browser,
            lambda d: (t := d.find_element(By.ID, "fairness-table")).text.count("[") >= 12 and t,
            "the fairness table",
        )
        for attribute in ("skin tone", "gender presentation", "age", "body type"):
            assert attribute in table.text
        top = _wait(
            browser, lambda d: len(_images(d, "top-images")) >= 6 and _images(d, "top-images"), "6 images"
        )
        assert len(top) == 6
        # the top images of "a photo of a pilot" are pilots (the embedded CLIP's zero-shot top-1 is ~1.0)
        captions = browser.find_element(By.ID, "top-images").text
        assert captions.count("(pilot)") >= 5, captions
        _wait(browser, lambda d: _images(d, "group-shares"), "the group-share plot")
        assert "zero-shot top-1" in browser.find_element(By.ID, "audit-summary").text
        # the trust report's other axes: unsafe content and spurious features, every number with its interval
        _click(browser, "run-trust")
        safety = _wait(
            browser,
            lambda d: (t := d.find_element(By.ID, "safety-table")).text.count("[") >= 8 and t,
            "the safety table",
        )
        assert "NSFW rate@10 text→image" in safety.text and "separability, image tower" in safety.text
        assert "NSFW excess@10 image→text" in safety.text  # the element-free control's reading
        _wait(
            browser,
            lambda d: "RaVL on 160" in d.find_element(By.ID, "trust-summary").text,
            "the trust summary",
        )
        assert "cluster" in browser.find_element(By.ID, "spurious-table").text
        shot = _screenshot(browser, "fairness-audit")
        assert 0 < shot.stat().st_size < 200_000

        client = Client(app.url, verbose=False)
        table, plot, gallery, summary = client.predict(
            "synthworld-clip (embedded)",
            "SynthWorld test (balanced)",
            10,
            "skin tone",
            "a photo of a chef",
            3,
            api_name="/audit",
        )
        assert [row[0] for row in table["data"]] == ["skin tone", "gender presentation", "age", "body type"]
        assert len(gallery) == 3 and all("(chef)" in item["caption"] for item in gallery)
        assert Image.open(plot).size[0] > 100
        with pytest.raises(Exception, match="characters"):
            client.predict(
                "synthworld-clip (embedded)",
                "SynthWorld test (balanced)",
                10,
                "skin tone",
                "x" * 500,
                3,
                api_name="/audit",
            )


def test_ravl_space(browser):
    with RunningSpace("ravl") as app:
        app.module.run_discovery(*app.module.DEFAULT_REQUEST)  # computed before the page opens, as at start
        _open(browser, app.url)
        # the page opens on the default request answered: the top-ranked cluster is the planted rectangle
        n_default = app.module.DEFAULT_REQUEST[0]
        _wait(
            browser,
            lambda d: f"{n_default} test images" in d.find_element(By.ID, "discovery-summary").text,
            "the default discovery",
        )
        shares = re.findall(r"(\d+)%", browser.find_element(By.ID, "cluster-table").text)
        assert shares and int(shares[0]) >= 75, shares
        _set_number(browser, "n-images", 36)
        _click(browser, "run-discovery")
        _wait(
            browser,
            lambda d: "36 test images" in d.find_element(By.ID, "discovery-summary").text,
            "the new request's summary",
        )
        table = _wait(
            browser,
            lambda d: (
                "regions with the rectangle" in (t := d.find_element(By.ID, "cluster-table")).text
                and "%" in t.text
                and t
            ),
            "the cluster table",
        )
        _wait(browser, lambda d: _images(d, "exemplars"), "the exemplar grid")
        summary = browser.find_element(By.ID, "discovery-summary").text
        assert "36 test images, 144 regions" in summary
        # the top-ranked cluster is the planted rectangle: most of its regions hold it
        shares = re.findall(r"(\d+)%", table.text)  # the last column, one per ranked cluster, in rank order
        assert shares and int(shares[0]) >= 75, table.text
        shot = _screenshot(browser, "ravl")
        assert 0 < shot.stat().st_size < 200_000

        client = Client(app.url, verbose=False)
        exemplars, table, summary = client.predict(36, 0, api_name="/discover")  # cached: same request
        assert "k = " in summary and table["data"][0][0] == 1
        assert Image.open(exemplars).size[0] > 100
        with pytest.raises(Exception, match="expected 24 to 96|maximum value 96"):
            client.predict(500, 0, api_name="/discover")


def test_fair_diffusion_space(browser):
    with RunningSpace("fair-diffusion") as app:
        # the request-time gate compares the speed measured now with 30 s; this test machine is shared and its
        # speed varies, so the gate is tested on its own below (limit lowered), not through the machine's load
        app.module.MAX_REQUEST_S = float("inf")
        app.module.default_view()  # computed before the page opens, as the Space's start does
        _open(browser, app.url)
        # the page opens on its default request answered: 16 images per grid, a 50/50 gender target, and the
        # instruction brings the measured shares closer to it than the plain grid (the effect at a glance)
        n_default = app.module.DEFAULT_REQUEST[3]
        _wait(
            browser,
            lambda d: (
                len(_images(d, "plain-grid")) == n_default and len(_images(d, "fair-grid")) == n_default
            ),
            f"2 default grids of {n_default}",
        )
        default_summary = browser.find_element(By.ID, "fd-summary").text
        assert f"{n_default} images per grid" in default_summary
        without, with_ = map(float, re.search(r"([\d.]+) without, ([\d.]+) with", default_summary).groups())
        assert with_ < without, default_summary
        default_table = browser.find_element(By.ID, "shares-table").text
        assert re.search(r"feminine\s+50%", default_table) and re.search(r"masculine\s+50%", default_table)
        _type(browser, "prompt", "a photo of a firefighter")
        _type(browser, "shares", "0.25, 0.75")
        _set_number(browser, "n-images", 2)
        _set_number(browser, "steps", 5)
        _click(browser, "generate")
        _wait(
            browser,
            lambda d: "2 images per grid" in d.find_element(By.ID, "fd-summary").text,
            "the new request's summary",
        )
        table = _wait(
            browser,
            lambda d: (
                "with instruction" in (t := d.find_element(By.ID, "shares-table")).text
                and "feminine" in t.text
                and t
            ),
            "the measured shares",
        )
        _wait(
            browser,
            lambda d: len(_images(d, "plain-grid")) == 2 and len(_images(d, "fair-grid")) == 2,
            "2 grids",
        )
        rows = [
            re.search(rf"{group}\s+(\d+)%\s+(\d+)%\s+(\d+)%", table.text)
            for group in ("feminine", "masculine")
        ]
        assert all(rows), table.text
        assert [int(r.group(1)) for r in rows] == [25, 75]
        for column in (2, 3):  # each grid's measured shares cover its 2 images
            assert sum(int(r.group(column)) for r in rows) == 100, table.text
        assert "Total variation" in (summary := browser.find_element(By.ID, "fd-summary").text)
        assert "in context" in summary
        shot = _screenshot(browser, "fair-diffusion")
        assert 0 < shot.stat().st_size < 200_000

        client = Client(app.url, verbose=False)
        plain, fair, table, summary = client.predict(
            "a photo of a chef", "gender", "1, 1", 2, 4, 3, False, api_name="/generate"
        )
        assert len(plain) == len(fair) == 2 and [r[1] for r in table["data"]] == ["50%", "50%"]
        assert "bare phrases" in summary
        pixels = [np.asarray(Image.open(item["image"]).convert("RGB"), dtype=float) for item in plain + fair]
        assert all(p.std() > 5 for p in pixels)  # pictures, not blank frames
        with pytest.raises(Exception, match="cannot cover the 4 groups"):
            client.predict(
                "a photo of a chef", "skin_tone", "1, 1, 1, 1", 2, 4, 0, True, api_name="/generate"
            )
        with pytest.raises(Exception, match="needs an occupation in the prompt"):
            client.predict("a photo of a cat", "gender", "1, 1", 2, 4, 0, True, api_name="/generate")
        app.module.MAX_REQUEST_S = 0.01
        with pytest.raises(Exception, match="fewer images or steps"):
            client.predict("a photo of a chef", "gender", "1, 1", 2, 4, 0, True, api_name="/generate")
        with pytest.raises(Exception, match="non-negative numbers"):
            client.predict("a photo of a chef", "gender", "1, 2, 3", 2, 4, 0, True, api_name="/generate")


def test_cf_alpha_space(browser):
    with RunningSpace("cf-alpha") as app:
        _open(browser, app.url)
        # the page opens on α = 1 ranked, each attribute's skew shown next to its value at α = 0
        _wait(
            browser, lambda d: "α = 1:" in d.find_element(By.ID, "alpha-summary").text, "the default ranking"
        )
        default_table = browser.find_element(By.ID, "skew-table").text
        assert "at α = 0" in default_table and "skin tone" in default_table
        _type(browser, "prompt", "a photo of a doctor")
        _set_number(browser, "n-top", 8)
        _set_number(browser, "alpha", 0)
        _click(browser, "rank")
        _wait(browser, lambda d: "α = 0:" in d.find_element(By.ID, "alpha-summary").text, "the α = 0 ranking")
        table_at_0 = browser.find_element(By.ID, "skew-table").text
        _set_number(browser, "alpha", 1)
        _click(browser, "rank")
        _wait(browser, lambda d: "α = 1:" in d.find_element(By.ID, "alpha-summary").text, "the α = 1 ranking")
        table_at_1 = _wait(
            browser,
            lambda d: (t := d.find_element(By.ID, "skew-table").text) != table_at_0 and t,
            "a new table",
        )
        for attribute in ("skin tone", "gender presentation", "age", "body type"):
            assert attribute in table_at_1
        top = _wait(
            browser, lambda d: len(_images(d, "top-images")) >= 8 and _images(d, "top-images"), "8 images"
        )
        assert len(top) == 8
        assert browser.find_element(By.ID, "top-images").text.count("(doctor)") >= 6
        shot = _screenshot(browser, "cf-alpha")
        assert 0 < shot.stat().st_size < 200_000

        client = Client(app.url, verbose=False)
        gallery, table, summary = client.predict(0.6, "a photo of a chef", 4, api_name="/rerank")
        assert summary.startswith("α = 0.5:")  # snapped to the cached grid
        assert len(gallery) == 4 and len(table["data"]) == 4
        with pytest.raises(Exception, match=r"expected a value in \[0, 1\]|maximum"):
            client.predict(3.0, "a photo of a chef", 4, api_name="/rerank")


def test_safe_clip_space(browser):
    with RunningSpace("safe-clip") as app:
        _open(browser, app.url)
        query = _wait(
            browser, lambda d: (q := _find(d, "#query textarea")).get_attribute("value") and q, "the example"
        )
        assert "," in query.get_attribute(
            "value"
        )  # an unsafe caption: the safe one plus the element's phrase
        # the page opens on the example retrieved (top 8): Safe-CLIP's top holds fewer unsafe images, for the
        # example and averaged over the gallery's unsafe captions (the intervals apart)
        table = _wait(
            browser,
            lambda d: (
                "top 8" in (t := d.find_element(By.ID, "unsafe-share")).text and "Safe-CLIP" in t.text and t
            ),
            "the example's shares",
        )
        shares = {}
        for name in ("base CLIP", "Safe-CLIP"):
            found = re.search(rf"{name}\s+(\d+)%\s+([\d.]+) \[([\d.]+), ([\d.]+)\]", table.text)
            assert found, table.text
            shares[name] = [float(v) for v in found.groups()]
        assert shares["Safe-CLIP"][0] < shares["base CLIP"][0], table.text
        assert shares["Safe-CLIP"][3] < shares["base CLIP"][2], table.text
        _set_number(browser, "n-top", 6)
        _click(browser, "retrieve")
        table = _wait(
            browser,
            lambda d: (
                "top 6" in (t := d.find_element(By.ID, "unsafe-share")).text and "Safe-CLIP" in t.text and t
            ),
            "the shares",
        )
        assert len(re.findall(r"(?:base CLIP|Safe-CLIP)\s+\d+%", table.text)) == 2, table.text
        _wait(
            browser,
            lambda d: len(_images(d, "base-top")) == 6 and len(_images(d, "safe-top")) == 6,
            "2 x 6 images",
        )
        browser.find_element(By.XPATH, "//button[@role='tab' and contains(., 'generation')]").click()
        _set_number(browser, "steps", 3)
        _set_number(browser, "n-images", 1)
        _click(browser, "generate")
        _wait(
            browser,
            lambda d: len(_images(d, "plain-grid")) == 1 and len(_images(d, "safe-grid")) == 1,
            "2 grids",
        )
        browser.find_element(By.XPATH, "//button[@role='tab' and contains(., 'retrieval')]").click()
        shot = _screenshot(browser, "safe-clip")
        assert 0 < shot.stat().st_size < 200_000

        client = Client(app.url, verbose=False)
        base, safe, table = client.predict("a photo of a chef, holding a knife", 4, api_name="/retrieve")
        assert len(base) == len(safe) == 4 and [r[0] for r in table["data"]] == ["base CLIP", "Safe-CLIP"]
        # each image is captioned with what it holds: "safe" or the unsafe element's kind of the gallery
        assert {item["caption"] for item in base + safe} <= set(app.module.gallery()[2])
        with pytest.raises(Exception, match="characters"):
            client.predict("x" * 400, 4, api_name="/retrieve")

"""The HTML report and the live web view in a real browser: Debian's Chromium, driven by Playwright.

Skipped only where ``/usr/bin/chromium`` is absent, and never in CI (``CI=true``):
there ``.ci/run`` installs it, and a missing browser fails these tests.
Playwright's own browser download is never used: it launches the system
Chromium, with no network beyond what each test allows.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from abduce.controller.cli import app as cli
from abduce.controller.views.report import SECTIONS
from tests.controller.views.test_inspect import RUN, recorded

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{CHROMIUM} is absent in CI: the browser tests must run (.ci/run installs chromium)")
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


def only(page, allowed) -> list[str]:
    """Abort every request whose URL ``allowed`` refuses; returns the list of those refused (filled as they come)."""
    refused: list[str] = []

    def handle(route):
        if allowed(route.request.url):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", handle)
    return refused


def variance_of(png: bytes) -> float:
    from PIL import Image

    return float(np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float).std())


def test_the_report_shows_every_section_offline(browser, tmp_path):
    out, _ = recorded()
    report = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(out), "--out", str(report)])
    assert result.exit_code == 0, result.output
    page = browser.new_page()
    try:
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        refused = only(page, lambda url: url.startswith("file:"))
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        for section in SECTIONS:
            box = page.locator(f"section#{section}")
            assert box.is_visible(), section
            assert box.bounding_box()["height"] > 20, section
        images = page.locator("section#plots img")
        assert images.count() == 4
        for i in range(images.count()):
            img = images.nth(i)
            img.scroll_into_view_if_needed()
            assert img.evaluate("i => i.complete && i.naturalWidth") > 100
        assert page.locator("tr.measurement").count() == RUN["budget"]
        assert refused == [] and all(u.startswith(("file:", "data:")) for u in requested), requested
    finally:
        page.close()


class _Stop(Exception):
    pass


def test_the_live_page_follows_a_running_campaign(browser, tmp_path):
    from playwright.sync_api import expect

    from abduce.controller.journal.rundir import RunDirectory
    from abduce.controller.rehearse.simulated import SimulatedRun
    from abduce.controller.views.web import WebServer

    # a simulated instrument measures into a run directory: 5 measurements, then one more per permit
    opts = SimulatedRun(**RUN)
    live = tmp_path / "live"
    permits, stop, five = threading.Semaphore(0), threading.Event(), threading.Event()
    done = [0]

    def pace(record) -> None:
        done[0] += 1
        if done[0] >= 5:
            five.set()
            while not permits.acquire(timeout=0.05):
                if stop.is_set():
                    raise _Stop

    def measure() -> None:  # the journal's connection belongs to this thread
        rundir = RunDirectory(live, {"mode": "in-process", **opts.model_dump(mode="json")})
        try:
            opts.run([rundir, pace], journal=rundir.journal)
        except _Stop:
            pass
        finally:
            rundir.close()

    worker = threading.Thread(target=measure, daemon=True)
    worker.start()
    try:
        assert five.wait(60), "the campaign did not reach 5 measurements"
        with WebServer([live], port=0, poll_s=0.1, own_logging=False).start() as server:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            try:
                refused = only(page, lambda url: url.startswith(server.url))
                page.goto(server.url)
                card = page.locator("#run-live")
                expect(card.locator(".n")).to_have_text("5")
                expect(page.locator("#live")).to_have_text("live", timeout=60_000)  # the event stream is open
                posteriors = card.locator("img.plot-posteriors")
                page.wait_for_function(
                    "() => document.querySelector('#run-live img.plot-posteriors').naturalWidth > 0", timeout=60_000
                )
                src = posteriors.get_attribute("src")

                permits.release()  # the instrument's next reading arrives
                expect(page.locator("#run-live .n")).to_have_text("6", timeout=60_000)
                # the measurement shows as soon as it is journalled, the campaign's decision on it next
                expect(page.locator("#run-live")).to_have_attribute("data-last", "decision", timeout=60_000)
                expect(page.locator("#run-live .deciding")).to_have_count(0)
                posteriors = page.locator("#run-live img.plot-posteriors")
                assert posteriors.get_attribute("src") != src  # a new plot, for the new measurement
                assert posteriors.evaluate("i => i.complete && i.naturalWidth") > 200
                assert page.locator("#run-live img.plot-probabilities").evaluate("i => i.naturalWidth") > 200
                shot = page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
                assert len(shot) > 30_000
                assert variance_of(posteriors.screenshot()) > 10  # the plot is drawn, not a blank box
                assert refused == []
            finally:
                page.close()
    finally:
        stop.set()
        worker.join(60)
    assert not worker.is_alive()

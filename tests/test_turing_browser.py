"""A real browser (Debian chromium, headless, driven by Playwright) answers by keyboard and mouse,
reloads mid-study, resumes, and the analysis sees exactly those answers."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from _helpers import free_port, start_turing_server

from ivus_sim.turing.analysis import analyze_study
from ivus_sim.turing.demo import make_demo_images
from ivus_sim.turing.study import StudyConfig, build_study

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_browser_keyboard_mouse_reload_resume(tmp_path: Path) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

    make_demo_images(tmp_path / "real", 8, size=32, stream="real", prefix="real")
    make_demo_images(tmp_path / "fake", 8, size=32, stream="fake", prefix="sim")
    built = build_study(tmp_path / "real", tmp_path / "fake", tmp_path / "study",
                        StudyConfig(n_readers=2, size=32, seed=6, block_size=3), progress=False)
    reader, token = next(iter(built.readers.items()))
    port = free_port()
    proc = start_turing_server(tmp_path / "study", port)
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/r/{token}")
            assert "Instructions" in page.content()
            with page.expect_navigation():
                page.click("#start")  # mouse

            def progress() -> str:
                return page.inner_text("#progress-text")

            assert progress() == "1 / 8"
            page.keyboard.press("4")  # confidence by keyboard
            with page.expect_navigation():
                page.keyboard.press("ArrowLeft")
            assert progress() == "2 / 8"
            page.click("#confidence-2")  # confidence and choice by mouse
            with page.expect_navigation():
                page.click("#choose-right")
            assert progress() == "3 / 8"
            with page.expect_navigation():
                page.keyboard.press("j")  # no confidence
            # break between blocks of 3
            assert page.is_visible("#continue") and "3 of 8" in page.content()
            with page.expect_navigation():
                page.click("#continue")
            assert progress() == "4 / 8"
            page.reload()  # mid-study reload: same trial again, nothing recorded twice
            assert progress() == "4 / 8"
            page.keyboard.press("5")
            with page.expect_navigation():
                page.keyboard.press("f")
            assert progress() == "5 / 8"
            with page.expect_navigation():
                page.click("#choose-left img")
            # close the browser and come back later with a new one: resume exactly here
            browser.close()
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/r/{token}")
            assert page.inner_text("#progress-text") == "6 / 8"
            browser.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    an = analyze_study(tmp_path / "study", n_boot=10, mixed=False)
    got = [(r["reader_id"], r["position"], r["choice"], r["confidence"]) for r in an.reads]
    assert got == [(reader, 0, "left", 4), (reader, 1, "right", 2), (reader, 2, "right", None),
                   (reader, 3, "left", 5), (reader, 4, "left", None)]
    shown = {r["position"]: r["n_shown"] for r in an.reads}
    assert shown[3] == 2  # displayed twice (reload), answered once
    assert all(r["rt_ms"] is not None and r["rt_ms"] >= 0 for r in an.reads)

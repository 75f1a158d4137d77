"""A real browser (Debian chromium, headless, driven by Playwright) goes through each mode as a
reader does: consent, instructions, practice with feedback, keyboard and mouse answers with the
undo/confirm step, the 1:1 display and the 2x zoom, a reload and a resume; the analysis sees exactly
those answers."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _helpers import free_port, start_turing_server

from ivus_sim.turing.demo import make_demo_images
from ivus_sim.turing.modes import StudyMode
from ivus_sim.turing.store import DB_NAME, Store
from ivus_sim.turing.study import StudyConfig, build_study

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SIZE = 64
IMAGE_BOXES = ("() => [...document.querySelectorAll('.frame img')].map(i => { const b = i.getBoundingClientRect(); "
               "return [i.naturalWidth, i.naturalHeight, b.width, b.height]; })")
IMAGES_LOADED = "() => [...document.images].length > 0 && [...document.images].every(i => i.complete && i.naturalWidth)"


@pytest.fixture
def playwright() -> Any:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@contextmanager
def _served(study: Path) -> Iterator[int]:
    port = free_port()
    proc = start_turing_server(study, port)
    try:
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _study(root: Path, **cfg: Any) -> tuple[Path, str, str]:
    make_demo_images(root / "real", 10, size=SIZE, stream="real", prefix="real")
    make_demo_images(root / "fake", 10, size=SIZE, stream="fake", prefix="sim")
    built = build_study(root / "real", root / "fake", root / "study",
                        StudyConfig(n_readers=2, size=SIZE, seed=6, n_pairs=4, **cfg), progress=False)
    reader, token = next(iter(built.readers.items()))
    return root / "study", reader, token


def _consent_and_start(page: Any) -> None:
    assert page.is_visible("#consent-text")
    page.click("#consent")  # the box is not ticked: the browser refuses to send the form
    assert page.is_visible("#consent-text")
    page.check("#agree")
    with page.expect_navigation():
        page.click("#consent")
    assert "Instructions" in page.content()
    with page.expect_navigation():
        page.click("#start")


def _native(page: Any, zoom: int = 1) -> None:
    page.wait_for_function(IMAGES_LOADED)
    boxes = page.evaluate(IMAGE_BOXES)
    assert boxes and all(b == [SIZE, SIZE, SIZE * zoom, SIZE * zoom] for b in boxes), boxes
    assert page.evaluate("() => getComputedStyle(document.querySelector('.frame img')).imageRendering") == "pixelated"


def _confidence_visible(page: Any) -> bool:
    return bool(page.evaluate("() => getComputedStyle(document.getElementById('confidence')).visibility "
                              "=== 'visible'"))


def test_browser_2afc_practice_confirm_undo_zoom_resume(tmp_path: Path, playwright: Any) -> None:
    study, reader, token = _study(tmp_path, n_practice=1, block_size=3)
    with Store(study / DB_NAME) as store:
        practice_side = store.query("SELECT real_side FROM trials WHERE reader_id = ? AND position = 0",
                                    (reader,))[0]["real_side"]
    with _served(study) as port, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/r/{token}")
        _consent_and_start(page)

        def progress() -> str:
            return str(page.inner_text("#progress-text"))

        # practice: 1:1 frames; confidence asked only after the choice; feedback after the answer
        assert progress() == "Practice 1 of 1"
        _native(page)
        assert not _confidence_visible(page) and page.is_disabled("#confirm")
        page.keyboard.press("ArrowLeft")
        assert _confidence_visible(page) and page.is_disabled("#confirm")
        page.keyboard.press("3")
        assert page.is_enabled("#confirm")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        text = page.inner_text("#feedback-text")
        assert f"The {practice_side} frame was acquired in a patient" in text
        assert page.is_visible("#practice-over")
        with page.expect_navigation():
            page.click("#next")
        # the study: progress starts empty
        assert progress() == "0 / 4 done"
        assert page.evaluate("() => document.getElementById('progress').value") == 0
        # keyboard: choose, rate, undo (nothing sent), choose again, rate, confirm
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("4")
        page.keyboard.press("Backspace")
        assert not _confidence_visible(page) and page.is_disabled("#confirm")
        assert page.evaluate("() => document.querySelector('input[name=choice]:checked')") is None
        assert progress() == "0 / 4 done"
        page.keyboard.press("j")
        page.keyboard.press("4")
        page.keyboard.press("ArrowLeft")  # a changed choice asks for the confidence again
        assert page.is_disabled("#confirm")
        page.keyboard.press("2")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert progress() == "1 / 4 done"
        # mouse, at 2x zoom (each image pixel drawn as 2 x 2, no smoothing)
        with page.expect_navigation():
            page.click("#zoom-2")
        _native(page, zoom=2)
        page.click("#choose-left img")
        page.click("label[for=confidence-3]")
        page.click("#undo")  # the mouse undo (a reset button): nothing sent, both cleared
        page.wait_for_function("() => document.getElementById('confirm').disabled && "
                               "!document.querySelector('input:checked')")
        assert progress() == "1 / 4 done"
        page.click("#choose-right img")
        page.click("label[for=confidence-5]")
        with page.expect_navigation():
            page.click("#confirm")
        assert progress() == "2 / 4 done"
        with page.expect_navigation():
            page.click("#zoom-1")
        _native(page)
        page.reload()  # mid-study reload: same trial again, nothing recorded twice
        assert progress() == "2 / 4 done"
        page.click("#choose-left")
        page.click("label[for=confidence-1]")
        with page.expect_navigation():
            page.click("#confirm")
        assert page.is_visible("#continue") and "3 of 4" in page.content()  # break after 3 main trials
        browser.close()
        # come back later with a new browser: resume exactly here
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/r/{token}")
        assert page.is_visible("#continue")
        with page.expect_navigation():
            page.click("#continue")
        assert progress() == "3 / 4 done"
        page.keyboard.press("f")
        page.keyboard.press("5")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "Thank you" in page.content() and page.is_visible("#debrief")
        browser.close()
    with Store(study / DB_NAME) as store:
        got = [tuple(r) for r in store.query("SELECT r.position, t.kind, r.choice, r.confidence, r.zoom, r.dpr, "
                                             "t.n_shown FROM responses r JOIN trials t USING (reader_id, position) "
                                             "WHERE reader_id = ? ORDER BY r.position", (reader,))]
    assert got == [(0, "practice", "left", 3, 1, 1.0, 1), (1, "main", "left", 2, 1, 1.0, 1),
                   (2, "main", "right", 5, 2, 1.0, 2), (3, "main", "left", 1, 1, 1.0, 3),
                   (4, "main", "left", 5, 1, 1.0, 1)]


def test_browser_single_image_mode(tmp_path: Path, playwright: Any) -> None:
    study, reader, token = _study(tmp_path, mode=StudyMode.SINGLE, n_practice=1)
    with Store(study / DB_NAME) as store:
        truth = store.query("SELECT truth FROM trials WHERE reader_id = ? AND position = 0", (reader,))[0]["truth"]
    with _served(study) as port, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/r/{token}")
        _consent_and_start(page)
        assert page.inner_text("#progress-text") == "Practice 1 of 1"
        _native(page)
        assert len(page.evaluate(IMAGE_BOXES)) == 1
        page.keyboard.press("m")  # computer model
        page.keyboard.press("1")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        expected = "acquired in a patient" if truth == "real" else "produced by a computer model"
        assert f"This frame was {expected}" in page.inner_text("#feedback-text")
        with page.expect_navigation():
            page.click("#next")
        assert page.inner_text("#progress-text") == "0 / 8 done"
        page.keyboard.press("ArrowLeft")  # acquired in a patient
        page.keyboard.press("4")
        page.keyboard.press("u")  # undo
        assert page.is_disabled("#confirm") and page.inner_text("#progress-text") == "0 / 8 done"
        page.keyboard.press("r")
        page.keyboard.press("4")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        page.click("#choose-simulated")
        assert _confidence_visible(page)
        page.click("label[for=confidence-2]")
        with page.expect_navigation():
            page.click("#confirm")
        assert page.inner_text("#progress-text") == "2 / 8 done"
        browser.close()
    with Store(study / DB_NAME) as store:
        got = [(r["position"], r["choice"], r["confidence"]) for r in store.reads() if r["reader_id"] == reader]
    assert got == [(0, "simulated", 1), (1, "real", 4), (2, "simulated", 2)]

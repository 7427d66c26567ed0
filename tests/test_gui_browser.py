"""The labelling page in a real browser (Playwright + Debian's Chromium, headless)."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="GUI dependencies not installed (pip install -e '.[gui]')")
pytest.importorskip("imageio_ffmpeg", reason="GUI dependencies not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from prefrl.envs import load_preset, make_env  # noqa: E402
from prefrl.gui.app import create_app  # noqa: E402
from prefrl.gui.server import GuiHandle  # noqa: E402
from prefrl.rollouts import collect_clips  # noqa: E402
from prefrl.store import LabelStore  # noqa: E402
from prefrl.types import ClipPair  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
# (functions, not expressions: the page's Content-Security-Policy forbids eval)
PLAYING = """() => ['video-left', 'video-right'].every(id => {
    const v = document.getElementById(id); return v.currentTime > 0 && !v.paused; })"""
SCREENSHOT_COPY = Path("/tmp/gui_screenshot.png")

pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="chromium is not installed (apt-get install chromium)")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[GuiHandle, str, Path]]:
    preset = load_preset("Pendulum")
    clips = collect_clips(make_env(preset, seed=0), 8, preset.clip_len, np.random.default_rng(0))
    store_path = tmp_path / "labels.sqlite"
    with LabelStore(store_path) as s:
        for i in range(0, 8, 2):
            s.add_query(ClipPair(clips[i], clips[i + 1]), "disagreement", 0.0)
    app = create_app(store_path, env_id="Pendulum-v1", annotators_file=tmp_path / "ann.json")
    token = app.state.gui.registry.add("alice")
    with GuiHandle(app, port=0) as handle:
        yield handle, token, store_path


def test_label_in_the_browser(server: tuple[GuiHandle, str, Path], tmp_path: Path) -> None:
    handle, token, store_path = server
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{handle.url}/?token={token}")
            page.wait_for_function(PLAYING, timeout=30_000)
            first = page.evaluate("document.body.dataset.pairId")
            assert page.text_content("#who") == "alice" and page.text_content("#queue") == "4"
            page.wait_for_timeout(600)  # a person watches a little: the next pair is prefetched
            shot = tmp_path / "gui.png"
            page.screenshot(path=str(shot))
            shutil.copyfile(shot, SCREENSHOT_COPY)

            page.keyboard.press("ArrowRight")
            page.wait_for_function(f"() => document.body.dataset.pairId !== '{first}'",
                                   timeout=10_000)
            page.wait_for_function(PLAYING, timeout=30_000)
            done_is_1 = "() => document.getElementById('done').textContent === '1'"
            page.wait_for_function(done_is_1)  # the answer is sent while the next pair shows
            with sqlite3.connect(store_path) as con:
                rows = con.execute("SELECT answer, source, annotator, query_id, response_time_s, "
                                   "undone FROM labels").fetchall()
            assert len(rows) == 1
            answer, source, annotator, qid, rt, undone = rows[0]
            assert (answer, source, annotator, str(qid), undone) == ("right", "human", "alice",
                                                                      first, 0)
            assert 0.3 < rt < 60
            timing = page.evaluate("window.prefrlTimings")[0]
            assert timing["shown_ms"] < 1000  # the next pair was prefetched

            page.keyboard.press("u")  # undo brings the pair back
            page.wait_for_function(f"() => document.body.dataset.pairId === '{first}'",
                                   timeout=10_000)
            with sqlite3.connect(store_path) as con:
                assert con.execute("SELECT undone FROM labels").fetchall() == [(1,)]
            page.wait_for_function(PLAYING, timeout=30_000)
            page.keyboard.press("ArrowUp")
            page.wait_for_function(f"() => document.body.dataset.pairId !== '{first}'",
                                   timeout=10_000)
            page.wait_for_function(done_is_1)
            with sqlite3.connect(store_path) as con:
                assert con.execute("SELECT answer FROM labels WHERE undone = 0").fetchall() == [
                    ("equal",)]
            page.click("#stats summary")
            page.wait_for_selector("#stats-body table", timeout=10_000)
            assert "alice" in page.text_content("#stats-body")
            assert not errors, errors
        finally:
            browser.close()


def test_page_shows_the_question_and_that_the_run_finished(tmp_path: Path) -> None:
    preset = load_preset("Pendulum")
    clips = collect_clips(make_env(preset, seed=0), 2, preset.clip_len, np.random.default_rng(0))
    store_path = tmp_path / "labels.sqlite"
    with LabelStore(store_path) as s:
        s.add_query(ClipPair(clips[0], clips[1]), "disagreement", 0.0)
        s.put_meta("run_state", "training")
    app = create_app(store_path, env_id="Pendulum-v1", annotators_file=tmp_path / "ann.json",
                     question="Which pendulum swings higher?")
    token = app.state.gui.registry.add("alice")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page()
            with GuiHandle(app, port=0) as handle:
                page.goto(f"{handle.url}/?token={token}")
                assert page.text_content("#question") == "Which pendulum swings higher?"
                assert "Which clip does the task better?" not in page.content()
                page.wait_for_function(PLAYING, timeout=30_000)
                with LabelStore(store_path) as s:  # what the trainer does as the run ends
                    s.put_meta("run_state", "finished")
                page.wait_for_function("() => document.getElementById('message').textContent"
                                       ".includes('The run has finished')", timeout=10_000)
            page.keyboard.press("ArrowLeft")  # the server is gone now
            page.wait_for_timeout(4000)  # status polls fail meanwhile
            text = page.text_content("#message") or ""
            assert "The run has finished" in text and "fetch" not in text.lower()
        finally:
            browser.close()


def test_page_says_the_server_is_gone_not_failed_to_fetch(
        server: tuple[GuiHandle, str, Path]) -> None:
    handle, token, _ = server
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{handle.url}/?token={token}")
            page.wait_for_function(PLAYING, timeout=30_000)
            handle.stop()
            page.wait_for_function("() => document.getElementById('message').textContent"
                                   ".includes('cannot be reached')", timeout=10_000)
            assert "fetch" not in (page.text_content("#message") or "").lower()
        finally:
            browser.close()

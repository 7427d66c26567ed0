"""Benchmark of the labelling GUI: clip preparation cost and answer-to-next-pair latency.

Measures, on this machine:

1. render and encode seconds per clip, for MuJoCo envs (``--envs``) and a pixel clip (Atari
   Pong frames if ale-py works, else synthetic 84x84 frames);
2. clips per second the server prepares (store -> frames -> mp4 on disk, its worker thread);
3. in Chromium (if Playwright and Debian's ``chromium`` are installed): time from an answer
   key press to the next pair shown and playing, with the next pair prefetched
   (``--think`` seconds between pairs, like a person) and with rapid answers; with
   ``--arrive S`` the questions arrive one every S seconds meanwhile, as in a run.

Usage: ``python -m prefrl.gui.bench [--envs Reacher,HalfCheetah] [--clips 4] [--size 240]
[--pairs 20] [--think 1.6] [--arrive S] [--no-browser] [--json OUT]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from prefrl.gui import render as _render  # noqa: F401 - sets MUJOCO_GL before MuJoCo loads
from prefrl.types import Clip


def _mujoco_clips(name: str, n: int, seed: int = 0) -> list[Clip]:
    from prefrl.envs import load_preset, make_env
    from prefrl.rollouts import collect_clips

    preset = load_preset(name)
    return collect_clips(make_env(preset, seed=seed), n, preset.clip_len,
                         np.random.default_rng(seed))


def _pixel_clips(n: int, length: int = 50) -> tuple[str, list[Clip]]:
    try:
        import ale_py
        import gymnasium

        from prefrl.rollouts import collect_clips

        gymnasium.register_envs(ale_py)
        env = gymnasium.make("ALE/Pong-v5")
        return "ALE/Pong-v5 (210x160 RGB)", collect_clips(env, n, length,
                                                         np.random.default_rng(0))
    except Exception:  # noqa: BLE001 - no ALE here: synthetic frames
        rng = np.random.default_rng(0)
        return "synthetic 84x84x4", [Clip(
            obs=rng.integers(0, 255, (length, 84, 84, 4), dtype=np.uint8),
            acts=np.zeros((length, 1), np.int64), true_rews=np.zeros(length),
            env_id="ALE/Pong-v5") for _ in range(n)]


def _per_clip(clips: list[Clip], size: int, out: Path) -> dict[str, float]:
    from prefrl.gui.render import clip_frames
    from prefrl.gui.video import encode_video

    clip_frames(clips[0], size=size)  # build the renderer (not counted)
    render, encode, frames = [], [], []
    for i, clip in enumerate(clips):
        t0 = time.perf_counter()
        f, fps = clip_frames(clip, size=size)
        t1 = time.perf_counter()
        encode_video(f, out / f"{i}.mp4", fps)
        encode.append(time.perf_counter() - t1)
        render.append(t1 - t0)
        frames.append(len(f))
    return {"steps": clips[0].length, "frames": statistics.mean(frames),
            "height": int(f.shape[1]), "width": int(f.shape[2]),
            "render_s": statistics.median(render), "encode_s": statistics.median(encode),
            "total_s": statistics.median(np.add(render, encode).tolist())}


def _throughput(clips: list[Clip], size: int, tmp: Path) -> float:
    from prefrl.gui.video import PREFETCH, VideoCache
    from prefrl.store import LabelStore

    with LabelStore(tmp / "tp.sqlite") as store:
        store.add_clips(clips)
        cache = VideoCache(tmp / "tp_cache", size=size)
        cache.get(clips[0])  # warm-up (renderer, ffmpeg in page cache)
        t0 = time.perf_counter()
        futs = [cache.request(c.hash, functools.partial(store.get_clip, c.hash),
                              priority=PREFETCH) for c in clips[1:]]
        for f in futs:
            f.result(600)
        dt = time.perf_counter() - t0
        cache.close()
    return (len(clips) - 1) / dt


def _browser(env: str, pairs: int, think_s: float, tmp: Path, arrive_s: float = 0.0
             ) -> dict[str, Any] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if chromium is None:
        return None
    from prefrl.gui.app import create_app
    from prefrl.gui.server import GuiHandle
    from prefrl.store import LabelStore
    from prefrl.types import ClipPair

    clips = _mujoco_clips(env, 2 * pairs + 2, seed=1)
    run = tmp / f"browser-{think_s}"
    run.mkdir()
    first_n = len(clips) if arrive_s <= 0 else 4  # arrive_s > 0: the rest come one by one
    with LabelStore(run / "labels.sqlite") as s:
        for i in range(0, first_n, 2):
            s.add_query(ClipPair(clips[i], clips[i + 1]), "random", 0.0)
    done = threading.Event()

    def ask_more() -> None:  # like a trainer asking questions while people answer
        with LabelStore(run / "labels.sqlite") as s:
            for i in range(first_n, len(clips), 2):
                if done.wait(arrive_s):
                    return
                s.add_query(ClipPair(clips[i], clips[i + 1]), "random", 0.0)

    asker = threading.Thread(target=ask_more, daemon=True)
    asker.start()
    app = create_app(run / "labels.sqlite", env_id=None, annotators_file=run / "ann.json")
    token = app.state.gui.registry.add("bench")
    playing = ("() => ['video-left', 'video-right'].every(id => { const v = "
               "document.getElementById(id); return v.currentTime > 0 && !v.paused; })")
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"]
    with GuiHandle(app, port=0) as h, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=args)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        t0 = time.perf_counter()
        page.goto(f"{h.url}/?token={token}")
        page.wait_for_function(playing, timeout=120_000)
        first_s = time.perf_counter() - t0
        for _ in range(pairs):
            page.wait_for_timeout(think_s * 1000)
            shown = page.evaluate("document.body.dataset.pairId")
            page.keyboard.press("ArrowLeft")
            page.wait_for_function(f"() => document.body.dataset.pairId !== '{shown}'",
                                   timeout=120_000)
            page.wait_for_function(playing, timeout=120_000)
        page.wait_for_timeout(300)
        timings = page.evaluate("window.prefrlTimings")
        browser.close()
    done.set()
    asker.join(10)
    shown_ms = [t["shown_ms"] for t in timings]
    play_ms = [t["playing_ms"] for t in timings if t["playing_ms"] is not None]
    return {"env": env, "think_s": think_s, "arrive_s": arrive_s, "pairs": len(timings),
            "first_pair_s": first_s,
            "shown_ms_median": statistics.median(shown_ms), "shown_ms_max": max(shown_ms),
            "shown_ms_p95": float(np.percentile(shown_ms, 95)),
            "playing_ms_median": statistics.median(play_ms), "playing_ms_max": max(play_ms)}


def main(argv: list[str]) -> int:
    """Run the benchmark and print a table (``--json OUT`` also writes the numbers)."""
    p = argparse.ArgumentParser(prog="prefrl bench gui", description=__doc__.split("\n")[0])
    p.add_argument("--envs", default="Reacher,HalfCheetah", help="MuJoCo presets to time")
    p.add_argument("--clips", type=int, default=4, help="clips per env for per-clip timings")
    p.add_argument("--throughput-clips", type=int, default=9, help="clips for clips/s")
    p.add_argument("--size", type=int, default=240, help="video side in pixels")
    p.add_argument("--pairs", type=int, default=20, help="answers in the browser test")
    p.add_argument("--think", type=float, default=1.6, help="seconds between answers")
    p.add_argument("--browser-env", default="HalfCheetah", help="env of the browser test")
    p.add_argument("--arrive", type=float, default=0.0, metavar="S",
                   help="browser test: questions arrive one every S seconds while the person "
                        "answers, as in a run (default 0: all queued at the start)")
    p.add_argument("--no-browser", action="store_true", help="skip the browser latency")
    p.add_argument("--json", type=Path, help="also write the results here")
    a = p.parse_args(argv)
    res: dict[str, Any] = {"size": a.size, "per_clip": {}, "clips_per_s": {}, "browser": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sets = {name: _mujoco_clips(name, max(a.clips, a.throughput_clips))
                for name in a.envs.split(",") if name}
        label, pix = _pixel_clips(max(a.clips, a.throughput_clips))
        sets[label] = pix
        for name, clips in sets.items():
            out = tmp / name.replace("/", "_").replace(" ", "_")
            out.mkdir()
            res["per_clip"][name] = _per_clip(clips[:a.clips], a.size, out)
            res["clips_per_s"][name] = _throughput(clips[:a.throughput_clips], a.size, out)
        if not a.no_browser:
            for think in (a.think, 0.2):
                b = _browser(a.browser_env, a.pairs, think, tmp, a.arrive)
                if b is None:
                    print("browser latency skipped: needs playwright and chromium",
                          file=sys.stderr)
                    break
                res["browser"].append(b)
    print(f"clip preparation at {a.size}x{a.size} (median per clip, this machine):")
    print(f"  {'clip':<28} {'steps':>5} {'frames':>6} {'render s':>9} {'encode s':>9} "
          f"{'total s':>8} {'clips/s':>8}")
    for name, r in res["per_clip"].items():
        print(f"  {name:<28} {r['steps']:>5} {r['frames']:>6.0f} {r['render_s']:>9.3f} "
              f"{r['encode_s']:>9.3f} {r['total_s']:>8.3f} {res['clips_per_s'][name]:>8.2f}")
    for b in res["browser"]:
        print(f"browser ({b['env']}, {b['pairs']} answers, {b['think_s']:g} s between): "
              f"answer -> next pair shown median {b['shown_ms_median']:.0f} ms "
              f"(p95 {b['shown_ms_p95']:.0f}, max {b['shown_ms_max']:.0f}), "
              f"playing median {b['playing_ms_median']:.0f} ms "
              f"(max {b['playing_ms_max']:.0f}); first pair after {b['first_pair_s']:.2f} s")
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

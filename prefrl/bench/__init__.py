"""Benchmarks: ``prefrl bench reward | gui | run SUITE``.

``reward`` times the reward model; ``run`` runs the paper's experiment grids (see
:mod:`prefrl.bench.runner`).
"""

from __future__ import annotations

import sys

USAGE = """usage: prefrl bench SUITE [OPTIONS]

suites:
  reward    reward-model training throughput and batched inference cost (CPU, and CUDA if present)
  reward-updates  reward training over a run's label schedule on stored labels: time, held-out acc
  overhead  learned-reward run beside the true-reward run: wall ratio and time per component
  gui       clip render/encode time and how many clips per second the GUI server prepares
  run SUITE run a grid of training runs, resumably (--help for options); SUITE is one of
            mujoco-paper, atari-paper, smoke, or a suite .json file
  list      list the run suites
  SUITE     short for run SUITE (e.g. prefrl bench smoke --dry-run)
"""


def main(argv: list[str]) -> int:
    """Dispatch to a benchmark."""
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] == "reward":
        from prefrl.bench.reward_bench import main as reward_main

        return reward_main(argv[1:])
    if argv[0] == "reward-updates":
        from prefrl.bench.reward_updates import main as updates_main

        return updates_main(argv[1:])
    if argv[0] == "overhead":
        from prefrl.bench.overhead import main as overhead_main

        return overhead_main(argv[1:])
    if argv[0] == "gui":
        from prefrl.gui.bench import main as gui_bench_main

        return gui_bench_main(argv[1:])
    from prefrl.bench.suites import SUITES

    if argv[0] == "list":
        for name, suite in SUITES.items():
            print(f"{name:<14} {len(suite.cells())} cells: {suite.description}")
        return 0
    if argv[0] == "run" or argv[0] in SUITES:
        from prefrl.bench.runner import main as run_main

        return run_main(argv[1:] if argv[0] == "run" else argv)
    print(f"prefrl: error: unknown benchmark {argv[0]!r}\n{USAGE}", file=sys.stderr)
    return 2

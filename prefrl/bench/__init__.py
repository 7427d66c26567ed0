"""Benchmarks: ``prefrl bench reward`` (reward-model throughput)."""

from __future__ import annotations

import sys

USAGE = """usage: prefrl bench SUITE [OPTIONS]

suites:
  reward    reward-model training throughput and batched inference cost (CPU, and CUDA if present)
"""


def main(argv: list[str]) -> int:
    """Dispatch to a benchmark."""
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] == "reward":
        from prefrl.bench.reward_bench import main as reward_main

        return reward_main(argv[1:])
    print(f"prefrl: error: unknown benchmark {argv[0]!r}\n{USAGE}", file=sys.stderr)
    return 2

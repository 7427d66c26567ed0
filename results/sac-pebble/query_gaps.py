"""What each feedback session's queries compared, read from a run's label store (issue 16).

Usage::

    python results/sac-pebble/query_gaps.py RUN/labels.sqlite [--entropy-steps 10000]

One line per feedback session (the env step it was asked at): the queries asked, how many of
their clips come from the first ``--entropy-steps`` steps (PEBBLE's state-entropy phase), the
mean gap in true clip return between the two clips of a pair, and the pairs' mean true clip
return. The store is opened read-only.
"""

import argparse
import sqlite3

QUERY = """
SELECT q.env_step, COUNT(*),
       SUM(l.step < :entropy) + SUM(r.step < :entropy),
       AVG(ABS(l.true_return - r.true_return)),
       AVG((l.true_return + r.true_return) / 2)
FROM queries q JOIN clips l ON l.hash = q."left" JOIN clips r ON r.hash = q."right"
GROUP BY q.env_step ORDER BY q.env_step
"""


def main() -> None:
    """Print the per-session table for one label store."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", help="a run's labels.sqlite")
    ap.add_argument("--entropy-steps", type=int, default=10_000)
    args = ap.parse_args()
    conn = sqlite3.connect(f"file:{args.store}?mode=ro", uri=True)
    print("step      queries  entropy-phase clips  mean |true gap|  mean true return")
    for step, n, early, gap, mean in conn.execute(QUERY, {"entropy": args.entropy_steps}):
        print(f"{step:>7}  {n:>8}  {early:>19}  {gap:>15.2f}  {mean:>16.1f}")
    conn.close()


if __name__ == "__main__":
    main()

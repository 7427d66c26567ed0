"""Compare two cProfile dumps: the functions whose own time (tottime) differs most.

    python results/overhead/profile_diff.py TRUE.prof LEARNED.prof [PATTERN ...]

prints the total own time of each, the 35 functions whose own time grew most from the first
to the second, and the cumulative time of every function whose name contains a PATTERN
(e.g. ``collect_rollouts``). ``profile-hc-61k/run.sh`` makes the two dumps.
"""

import pstats
import sys

Row = tuple[int, float, float]  # calls, own seconds, cumulative seconds


def load(path: str) -> dict[str, Row]:
    """``file:line:function`` -> (calls, own s, cumulative s), paths cut to the package."""
    out = {}
    for (file, line, name), (_, calls, own, cum, _) in pstats.Stats(path).stats.items():
        where = file.split("site-packages/")[-1]
        where = where[where.rfind("prefrl/"):] if "prefrl/" in where else where
        out[f"{where}:{line}:{name}"] = (calls, own, cum)
    return out


def main() -> None:
    """Print the comparison."""
    a, b = load(sys.argv[1]), load(sys.argv[2])
    none: Row = (0, 0.0, 0.0)
    total_a, total_b = sum(v[1] for v in a.values()), sum(v[1] for v in b.values())
    print(f"total tottime: {sys.argv[1]} {total_a:.1f} s, {sys.argv[2]} {total_b:.1f} s, "
          f"diff {total_b - total_a:.1f} s")
    keys = set(a) | set(b)
    print("top own-time increases (b - a):")
    for k in sorted(keys, key=lambda k: a.get(k, none)[1] - b.get(k, none)[1])[:35]:
        (na, own_a, _), (nb, own_b, _) = a.get(k, none), b.get(k, none)
        print(f"{own_b - own_a:8.2f} s  calls {na:>8} -> {nb:>8}  {k}")
    print("cumulative of selected:")
    for pattern in sys.argv[3:]:
        for k in sorted(k for k in keys if pattern in k):
            (na, _, cum_a), (nb, _, cum_b) = a.get(k, none), b.get(k, none)
            print(f"  {k}: a cum {cum_a:.1f}  b cum {cum_b:.1f}  calls {na} / {nb}")


if __name__ == "__main__":
    main()

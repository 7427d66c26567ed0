"""Compare two cProfile dumps: the functions whose own time (tottime) differs most.

    python results/overhead/profile_diff.py TRUE.prof LEARNED.prof [PATTERN ...]

prints the total own time of each, the 35 functions whose own time grew most from the first
to the second, and the cumulative time of every function whose name contains a PATTERN
(e.g. ``collect_rollouts``). ``profile-hc-61k/run.sh`` makes the two dumps.
"""
import pstats, sys
def load(p):
    st = pstats.Stats(p).stats
    out = {}
    for (f, l, n), (cc, nc, tt, ct, callers) in st.items():
        path = f.split("site-packages/")[-1]
        path = path[path.rfind("prefrl/"):] if "prefrl/" in path else path
        key = f"{path}:{l}:{n}"
        out[key] = (nc, tt, ct)
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
ta = sum(v[1] for v in a.values()); tb = sum(v[1] for v in b.values())
print(f"total tottime: {sys.argv[1]} {ta:.1f} s, {sys.argv[2]} {tb:.1f} s, diff {tb-ta:.1f} s")
keys = set(a) | set(b)
rows = sorted(keys, key=lambda k: -(b.get(k, (0,0,0))[1] - a.get(k, (0,0,0))[1]))
print("top own-time increases (b - a):")
for k in rows[:35]:
    na, tta, _ = a.get(k, (0,0,0)); nb, ttb, _ = b.get(k, (0,0,0))
    print(f"{ttb-tta:8.2f} s  calls {na:>8} -> {nb:>8}  {k}")
print("cumulative of selected:")
for pat in sys.argv[3:]:
    for k in keys:
        if pat in k:
            print(f"  {k}: a cum {a.get(k,(0,0,0))[2]:.1f}  b cum {b.get(k,(0,0,0))[2]:.1f}  calls {a.get(k,(0,0,0))[0]} / {b.get(k,(0,0,0))[0]}")

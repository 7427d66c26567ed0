"""Stochastic-policy evaluation beside eval.json's deterministic one: eval_stochastic.json."""
import sys, json, time
from pathlib import Path
from prefrl.evaluate import evaluate_standard, evaluate_run
for d in map(Path, sys.argv[1:]):
    fixed = evaluate_run(d, episodes=10, seed=12345, deterministic=False)
    std = evaluate_standard(d, episodes=10, seed=12345, deterministic=False)
    (d / "eval_stochastic.json").write_text(json.dumps({
        "true_return": fixed, "episodes": 10, "seed": 12345, "deterministic": False,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "standard_env": std}, indent=2))
    print(d.name, "stochastic: fixed-horizon %.1f" % fixed, "standard: return %.1f length %.1f falls %d" % (std["return"], std["length"], std["falls"]))

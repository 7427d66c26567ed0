"""Evaluate ad-hoc ablation runs as `prefrl bench run` does: eval.json beside result.json."""
import sys, json, time
from pathlib import Path
from prefrl.evaluate import evaluate_standard, evaluate_run
for d in sys.argv[1:]:
    d = Path(d)
    fixed = evaluate_run(d, episodes=10, seed=12345, deterministic=True)
    std = evaluate_standard(d, episodes=10, seed=12345)
    (d / "eval.json").write_text(json.dumps({
        "true_return": fixed, "episodes": 10, "seed": 12345, "deterministic": True,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "standard_env": std}, indent=2))
    print(d.name, "fixed-horizon true return %.1f" % fixed, "standard: return %.1f length %.1f falls %d" % (std["return"], std["length"], std["falls"]))

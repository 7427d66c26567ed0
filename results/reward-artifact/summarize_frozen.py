"""Summarise a frozen-reward benchmark run beside the true-reward and online runs of its grid.

``python results/reward-artifact/summarize_frozen.py --dir results/reward-artifact/HalfCheetah-0-300k
--true T --online O`` reads DIR/model (the offline-trained reward) and DIR/frozen (PPO on it,
frozen, no labels), T (PPO on the true reward) and O (the online run: reward learned during the
run), all the same seed and steps. Each final policy plays 10 deterministic episodes scored by
the true reward and by the frozen model (``play`` in summarize.py); the guard's readings over
the frozen run come from its metrics.csv and result.json. Writes DIR/summary.md and .json.
"""

import argparse
import importlib.util
import json
import sys
from pathlib import Path

from prefrl.envs import load_preset
from prefrl.evaluate import random_policy_return
from prefrl.guard import reading_summary
from prefrl.reward.model import load_reward
from prefrl.rundir import MetricsLog
from prefrl.provenance import provenance

_spec = importlib.util.spec_from_file_location("ra_summarize", Path(__file__).with_name(
    "summarize.py"))
ra = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ra)


def main() -> int:
    """Evaluate the three final policies; write the summary."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--true", type=Path, required=True)
    ap.add_argument("--online", type=Path, required=True)
    ap.add_argument("--env", default="HalfCheetah")
    a = ap.parse_args()
    preset = load_preset(a.env)
    model = load_reward(a.dir / "model", device="cpu")
    runs = {"frozen": a.dir / "frozen", "true": a.true, "online": a.online}
    ev = {r: ra.play(d / "checkpoint", model, preset) for r, d in runs.items()}
    rand = random_policy_return(preset, episodes=10)
    frac = {r: (ev[r]["true_return"] - rand) / (ev["true"]["true_return"] - rand)
            for r in ("frozen", "online")}
    res = {r: json.loads((d / "result.json").read_text()) for r, d in runs.items()}
    rows = MetricsLog(a.dir / "frozen" / "metrics.csv").read()
    guard = reading_summary(rows)
    steps = res["frozen"]["steps"]
    doc = {"steps": steps, "eval": ev, "random_return": rand, "fraction_of_true": frac,
           "guard": guard, "alarms": res["frozen"].get("alarms", []),
           "exploitation": ra.exploitation(ra.curve(a.dir / "frozen" / "metrics.csv", steps)),
           "model": json.loads((a.dir / "model_eval.json").read_text()),
           "runs": {r: str(d) for r, d in runs.items()},
           # the commit each run started from (config.json; result.json's is read at the end)
           "commits": {r: json.loads((d / "config.json").read_text())["provenance"]["git_commit"]
                       for r, d in runs.items()},
           "dirty": {r: json.loads((d / "config.json").read_text())["provenance"]["git_dirty"]
                     for r, d in runs.items()},
           "provenance": provenance(" ".join(sys.argv))}
    (a.dir / "summary.json").write_text(json.dumps(doc, indent=2))
    x = doc["exploitation"]
    lines = [
        f"# Offline-trained reward, frozen, beside the online and true-reward runs: PPO on "
        f"{preset.env_id}, {steps} steps, seed {res['frozen']['seed']}", "",
        "| policy | true return (10 det. episodes) | frozen model's return (same episodes) | "
        "fraction of true |", "| --- | --- | --- | --- |",
        *[f"| {name} | {ev[r]['true_return']:.1f} ± {ev[r]['true_std']:.1f} | "
          f"{ev[r]['learned_return']:.1f} | {frac[r]:.2f} |" if r in frac else
          f"| {name} | {ev[r]['true_return']:.1f} ± {ev[r]['true_std']:.1f} | "
          f"{ev[r]['learned_return']:.1f} | 1 |"
          for r, name in (("frozen", "PPO on the frozen offline reward (no labels)"),
                          ("online", "PPO on the reward learned online (700 labels)"),
                          ("true", "PPO on the true reward"))],
        f"| random policy | {rand:.1f} | | 0 |", "",
        "Fraction of true = (policy - random) / (true - random). The frozen model's return scores "
        "every policy with the same model file (normalised on its labelled clips).", "",
        f"Reward model: held-out accuracy {doc['model']['accuracy']:.3f} on "
        f"{doc['model']['n_pairs']} pairs, ECE {doc['model']['ece']:.3f}, Spearman vs true clip "
        f"returns {doc['model']['spearman']:.3f}.", "",
        f"Guard over the frozen run ({guard['rows']} rows, against the model's reference "
        f"clips): max hack_ood {guard['hack_ood_max']}, min hack_corr {guard['hack_corr_min']}, "
        f"max hack_trend {guard['hack_trend_max']}; alarm rows {guard['alarm_rows']}, first "
        f"alarm at step {guard['first_alarm_step']}; alarms in result.json: "
        f"{len(doc['alarms'])}.", "",
        f"Training curve of the frozen run ({x['rows']} rows): Spearman of learned vs true "
        f"training return {x['spearman_learned_vs_true']:.2f}; in "
        f"{x['intervals_learned_up_true_down']} of {x['intervals']} intervals the learned return "
        f"rose while the true return fell.", "",
        "Commits: " + ", ".join(f"{r} {c[:7]}{' (dirty)' if doc['dirty'][r] else ''}"
                                for r, c in doc["commits"].items()) + ".",
    ]
    (a.dir / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

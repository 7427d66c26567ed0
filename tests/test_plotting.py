"""Figures and summary of a hand-written experiment: the numbers are checked by hand."""

import csv
import json

import numpy as np
import pytest
import scipy.stats

from prefrl.plotting import load_experiment, make_report, plot_main, random_returns
from prefrl.plotting.aggregate import (
    aggregate,
    iqm,
    iqm_rows,
    mean_rows,
    normalized,
    seed_band,
    stratified_bootstrap_ci,
)
from prefrl.rundir import METRIC_COLUMNS

RANDOM = {"EnvA": 0.0, "EnvB": -100.0}
# final returns by (env, setting): one entry per seed; ("eval", x) = eval.json, ("curve", x) =
# no eval.json, the last 10% of 20 metrics rows average to x
FINALS = {
    ("EnvA", "true"): [("eval", 100.0), ("eval", 110.0), ("eval", 90.0)],
    ("EnvA", "labels-700"): [("eval", 50.0), ("eval", 80.0), ("eval", 20.0)],
    ("EnvB", "true"): [("eval", 100.0), ("eval", 140.0), ("curve", 120.0)],
    ("EnvB", "labels-700"): [("eval", -45.0), ("eval", 10.0), ("curve", 120.0)],
}
# learned-vs-true reward correlations (spearman, pearson) per learned seed; None = the run did
# not finish (no result.json): the last metrics row with a value counts
CORR = {"EnvA": [(0.9, 0.85), (0.8, 0.75), (0.7, 0.65)], "EnvB": [(0.5, 0.3), (0.4, 0.2), None]}
LAST_ROW_CORR = (0.6, 0.4)


def write_cell(exp, env, setting, seed, kind, final):
    d = exp / env / setting / str(seed)
    d.mkdir(parents=True)
    learned = setting != "true"
    corr = CORR[env][seed] if learned else None
    # 20 rows rising to the final value; the last two average to `final`
    vals = list(np.linspace(final - 200, final - 20, 18)) + [final - 5, final + 5]
    with (d / "metrics.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, METRIC_COLUMNS)
        w.writeheader()
        for i, v in enumerate(vals):
            row = {"step": 100 * (i + 1), "true_return": v, "labels": 10 * i}
            if learned:
                row["corr_spearman"], row["corr_pearson"] = (0.1, 0.1) if i < 19 else (
                    LAST_ROW_CORR)
            w.writerow(row)
        w.writerow({"step": 2100})  # a row without a return is skipped
    if kind == "eval":
        (d / "eval.json").write_text(json.dumps({"true_return": final, "episodes": 10}))
    if corr is not None or not learned:
        res = {"true_return": vals[-1], "corr_spearman": corr[0] if corr else None,
               "corr_pearson": corr[1] if corr else None,
               "reward_val_acc": 0.8 if learned else None,
               "wall_s": (130.0 if learned else 100.0) + 10 * seed,
               # CPU: learned 110 s on every seed, true 100 s (seed 1's true run has none)
               "cpu_s": 110.0 if learned else (None if seed == 1 else 100.0)}
        (d / "result.json").write_text(json.dumps(res))


@pytest.fixture
def exp(tmp_path):
    exp = tmp_path / "exp"
    for (env, setting), finals in FINALS.items():
        for seed, (kind, final) in enumerate(finals):
            write_cell(exp, env, setting, seed, kind, final)
    (exp / "random.json").write_text(json.dumps(RANDOM))
    return exp


def test_loading_reads_finals_from_eval_json_or_the_last_tenth_of_the_curve(exp):
    cells = {(c.env, c.setting, c.seed): c for c in load_experiment(exp)}
    assert len(cells) == 12
    c = cells[("EnvB", "true", "2")]
    assert c.final_source == "curve" and c.final_return == pytest.approx(120.0)
    assert len(c.steps) == 20 and c.finished
    c = cells[("EnvB", "labels-700", "2")]
    assert not c.finished and (c.corr_spearman, c.corr_pearson) == LAST_ROW_CORR
    assert cells[("EnvA", "labels-700", "1")].final_source == "eval"


def test_report_numbers_match_hand_computation(exp):
    rep = make_report(exp, compute_random=False, reps=4000, method="prefrl")
    for name in ("curves.png", "aggregate.png", "summary.md", "summary.csv", "aggregate.csv"):
        assert (exp / "figures" / name).stat().st_size > 100, name
    rows = {(r["env"], r["setting"]): r for r in rep["rows"]}
    # EnvA: random 0, true mean 100; learned mean (50 + 80 + 20) / 3 = 50 -> 0.5
    assert rows["EnvA", "labels-700"]["final_return"] == pytest.approx(50.0)
    assert rows["EnvA", "labels-700"]["fraction_of_true"] == pytest.approx(0.5)
    assert rows["EnvA", "true"]["fraction_of_true"] == pytest.approx(1.0)
    # EnvB: random -100, true mean (100 + 140 + 120) / 3 = 120, span 220;
    # learned mean (-45 + 10 + 120) / 3 = 85 / 3 -> (85 / 3 + 100) / 220
    assert rows["EnvB", "true"]["final_return"] == pytest.approx(120.0)
    assert rows["EnvB", "true"]["final_source"] == "mixed"
    assert rows["EnvB", "labels-700"]["fraction_of_true"] == pytest.approx(
        (85 / 3 + 100) / 220)
    assert rows["EnvB", "labels-700"]["final_return_sd"] == pytest.approx(
        np.std([-45, 10, 120], ddof=1))
    # correlations: means over seeds (the unfinished EnvB seed from its last metrics row)
    assert rows["EnvA", "labels-700"]["corr_spearman"] == pytest.approx(0.8)
    assert rows["EnvA", "labels-700"]["corr_pearson"] == pytest.approx(0.75)
    assert rows["EnvB", "labels-700"]["corr_spearman"] == pytest.approx((0.5 + 0.4 + 0.6) / 3)
    assert rows["EnvB", "labels-700"]["corr_pearson"] == pytest.approx((0.3 + 0.2 + 0.4) / 3)
    assert rows["EnvA", "true"]["corr_spearman"] is None
    # wall ratios per seed (learned 130 + 10 s, true 100 + 10 s): 1.3, 140/110, 150/120; median
    # over the finished seeds
    assert rows["EnvA", "labels-700"]["wall_ratio"] == pytest.approx(140 / 110)
    assert rows["EnvB", "labels-700"]["wall_ratio"] == pytest.approx((1.3 + 140 / 110) / 2)
    # CPU ratios: 1.1 wherever both runs of a seed have a CPU time (seeds 0 and 2 of EnvA, seed
    # 0 of EnvB, whose seed 2 did not finish)
    assert rows["EnvA", "labels-700"]["cpu_ratio"] == pytest.approx(1.1)
    assert rows["EnvB", "labels-700"]["cpu_ratio"] == pytest.approx(1.1)
    assert rows["EnvA", "true"]["cpu_ratio"] == pytest.approx(1.0)
    # IQM of the 6 normalised learned scores 0.5 0.8 0.2 | 0.25 0.5 1.0: drop 0.2 and 1.0
    agg = rep["aggregate"]
    est, lo, hi = agg["labels-700"]["iqm"]
    assert est == pytest.approx((0.25 + 0.5 + 0.5 + 0.8) / 4)
    assert lo <= est <= hi and 0.2 <= lo < hi <= 1.0
    # true: 1.0 1.1 0.9 | 200/220 240/220 1.0 -> middle four average to exactly 1
    assert agg["true"]["iqm"][0] == pytest.approx(1.0)
    assert agg["labels-700"]["mean"][0] == pytest.approx(np.mean([.5, .8, .2, .25, .5, 1.]))
    assert agg["labels-700"]["tasks"] == 2 and agg["labels-700"]["runs"] == 6
    with (exp / "figures" / "summary.csv").open() as f:
        table = {(r["env"], r["setting"]): r for r in csv.DictReader(f)}
    assert float(table["EnvA", "labels-700"]["fraction_of_true"]) == pytest.approx(0.5)
    md = (exp / "figures" / "summary.md").read_text()
    assert "| EnvB | labels-700 | 3 (2 finished) |" in md
    assert f"| {140 / 110:.2f}x | 1.10x |" in md
    # the goal's median over cells: wall ratios 1.3, 140/110, 150/120 (EnvA) and 1.3, 140/110
    # (EnvB) -> 1.27x; CPU ratios of the 3 cells with both times all 1.1
    assert ("Median over the 5 learned-reward cells with a true-reward twin: wall "
            f"{np.median([1.3, 140 / 110, 150 / 120, 1.3, 140 / 110]):.2f}x, CPU 1.10x "
            "(3 cells with CPU times)") in md
    assert f"| labels-700 | 2 | 6 | {est:.3f} [{lo:.3f}, {hi:.3f}]" in md
    with (exp / "figures" / "aggregate.csv").open() as f:
        assert float(next(csv.DictReader(f))["iqm"]) == pytest.approx(est)


def test_plot_main_and_missing_baselines(exp, capsys, tmp_path):
    (exp / "random.json").write_text(json.dumps({"EnvA": 0.0}))
    assert plot_main([str(exp), "--no-random", "--reps", "500"]) == 0
    out = capsys.readouterr().out
    assert "EnvB | labels-700" in out and "left out of the aggregate" in out
    with (exp / "figures" / "summary.csv").open() as f:
        table = {(r["env"], r["setting"]): r for r in csv.DictReader(f)}
    assert table["EnvB", "labels-700"]["fraction_of_true"] == ""
    assert plot_main([str(tmp_path / "nothing")]) == 2


def test_iqm_and_stratified_bootstrap():
    rng = np.random.default_rng(1)
    for n in range(1, 14):
        x = rng.normal(size=n)
        assert iqm(x) == pytest.approx(scipy.stats.trim_mean(x, 0.25))
    assert iqm_rows(np.array([[4.0, 1, 3, 2], [0, 0, 8, 0]])).tolist() == [2.5, 0.0]
    # stratified: runs are resampled within each task, so two constant tasks never vary
    est, lo, hi = stratified_bootstrap_ci([[0, 0, 0], [1, 1, 1]], reps=500)
    assert (est, lo, hi) == (0.5, 0.5, 0.5)
    est, lo, hi = stratified_bootstrap_ci([[0, 1, 2, 3], [10, 11, 12, 13]], reps=2000)
    assert est == pytest.approx(iqm([0, 1, 2, 3, 10, 11, 12, 13])) and lo < est < hi
    assert normalized(5.0, random=None, true=10.0) != normalized(5.0, random=None, true=10.0)
    assert normalized(5.0, random=5.0, true=5.0) != 0.0  # NaN: no span


def test_unequal_run_counts_weigh_every_task_the_same():
    # one task run on 6 seeds, the other on 3: extra seeds must not enlarge a task's share
    short, long_ = [0.2, 0.4, 0.6], [0.9, 1.0, 1.1, 0.9, 1.0, 1.1]
    mean, _, _ = stratified_bootstrap_ci([short, long_], mean_rows, reps=200)
    assert mean == pytest.approx((np.mean(short) + np.mean(long_)) / 2)
    # a task's runs given twice count as those runs once: the weighted IQM of 6 equal runs
    est, _, _ = stratified_bootstrap_ci([short, long_[:3] * 2], reps=200)
    once = iqm_rows(np.array([short + long_[:3]]), np.full(6, 1 / 6))[0]
    assert est == pytest.approx(once) and est != pytest.approx(iqm(short + long_[:3] * 2))
    # weighted IQM of runs repeated k times (weights 1/k) equals the plain IQM of the originals
    x = np.random.default_rng(3).normal(size=8)
    w = np.full(24, 1 / 24)
    assert iqm_rows(np.repeat(x, 3)[None, :], w)[0] == pytest.approx(iqm(x))
    assert iqm_rows(np.repeat(x, 3)[None, :], 7 * w)[0] == pytest.approx(iqm(x))  # any scale
    # and with equal counts the plain pooled IQM is kept (rliable's definition)
    equal = [[0.0, 1, 2], [10.0, 11, 12], [5.0, 6, 7]]
    assert stratified_bootstrap_ci(equal, reps=50)[0] == pytest.approx(iqm(sum(equal, [])))


def test_rliable_gives_the_same_estimates_when_installed():
    pytest.importorskip("rliable.library")
    tasks = [[0.1, 0.5, 0.9], [0.2, 0.4, 1.2]]
    ours = aggregate({"s": tasks}, method="prefrl", reps=3000)["s"]
    theirs = aggregate({"s": tasks}, method="rliable", reps=3000)["s"]
    assert theirs["method"] == "rliable"
    for stat in ("iqm", "mean"):
        assert theirs[stat][0] == pytest.approx(ours[stat][0])
        assert theirs[stat][1] == pytest.approx(ours[stat][1], abs=0.08)
        assert theirs[stat][2] == pytest.approx(ours[stat][2], abs=0.08)


def test_seed_band():
    ys = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, np.nan]])
    mean, lo, hi = seed_band(ys, reps=200)
    assert mean.tolist() == [2.0, 3.0, 3.0]
    assert lo[0] >= 1.0 and hi[0] <= 3.0 and lo[2] == hi[2] == 3.0
    same, lo, hi = seed_band(np.ones((3, 4)))
    assert (lo == hi).all() and (same == 1).all()


def test_random_returns_are_computed_once_and_cached(tmp_path, monkeypatch):
    calls = []

    def fake(preset, episodes, seed):
        calls.append(preset.name)
        return -123.0

    monkeypatch.setattr("prefrl.evaluate.random_policy_return", fake)
    got = random_returns(tmp_path, ["Pendulum", "NoSuchEnv"])
    assert got == {"Pendulum": -123.0, "NoSuchEnv": None} and calls == ["Pendulum"]
    assert random_returns(tmp_path, ["Pendulum"]) == {"Pendulum": -123.0}
    assert calls == ["Pendulum"]
    assert json.loads((tmp_path / "random.json").read_text())["returns"] == {"Pendulum": -123.0}

"""The overhead table: components and shares from two runs' result.json."""

import pytest

from prefrl.bench.overhead import markdown, run_command, summarise


def result(wall, **timers):
    return {"wall_s": wall, "cpu_s": wall / 2, "steps": 1000, "labels": 20,
            "reward_train_s": timers.pop("wait", 0.0), "reward_infer_s": timers.pop("infer", 0.0),
            "reward_val_acc": 0.8, "true_return": 1.0, "timers": timers}


def test_components_add_up_to_the_extra_time():
    learned = result(150.0, wait=20.0, infer=5.0, record_s=2.0, pretrain_collect_s=8.0,
                     pretrain_s=7.0, query_score_s=1.0, query_store_s=2.0, reward_fit_s=15.0,
                     guard_s=3.0, checkpoint_s=4.5)
    row = summarise("Pendulum", "fast-inline", learned, result(100.0, checkpoint_s=0.5))
    s = row["seconds"]
    assert row["ratio"] == pytest.approx(1.5) and row["cpu_ratio"] == pytest.approx(1.5)
    assert s["pretrain"] == 15.0 and s["query"] == 3.0 and s["fit"] == 15.0
    assert s["guard"] == 3.0 and s["checkpoint"] == 4.0  # beyond the true run's checkpoints
    parts = ("pretrain", "reward_wait", "query", "inference", "recording", "guard", "checkpoint",
             "other")
    assert sum(s[k] for k in parts) == pytest.approx(50.0)  # learned - true
    assert row["share"]["reward_wait"] == pytest.approx(20.0 / 150.0)
    # timed components only (`other`, -2 s, left out): (100 + 52) / 100
    assert s["other"] == pytest.approx(-2.0) and row["timed_ratio"] == pytest.approx(1.52)
    assert "1.50x" in markdown([row]) and "1.52x |" in markdown([row])
    assert "thread" not in markdown([row])


def test_background_rows_say_what_their_timed_ratio_leaves_out():
    learned = result(150.0, wait=1.0, reward_fit_s=30.0)
    row = summarise("Swimmer", "fast-background", learned, result(100.0))
    assert row["background"] and row["timed_ratio"] == pytest.approx(1.01)  # the waits only
    table = markdown([row])
    assert "1.01x* |" in table and "core of its own" in table


def test_run_commands_carry_the_variant():
    cmd = run_command("Swimmer", 3000, 1, "out", reward="learned", labels=40, update_every=500,
                      variant="full-background")
    joined = " ".join(cmd)
    assert "--reward-schedule full --reward-training background" in joined
    assert "--labels 40" in joined and "--update-every 500" in joined
    assert "--reward-schedule" not in " ".join(run_command("Swimmer", 3000, 1, "o", reward="true"))


def test_grid_rows_pair_each_learned_cell_with_its_true_twin(tmp_path):
    import json

    from prefrl.bench.overhead import grid_rows, median_line

    def cell(setting, seed, wall, reward="learned", background=False):
        d = tmp_path / "Swimmer" / setting / str(seed)
        d.mkdir(parents=True)
        (d / "result.json").write_text(json.dumps({**result(wall), "reward": reward}))
        (d / "config.json").write_text(json.dumps({"train": {"reward_schedule": "fast"},
                                                   "resolved": {"background_reward": background}}))
    cell("true", 0, 100.0, reward="true")
    cell("true", 1, 200.0, reward="true")
    cell("labels-700", 0, 110.0)
    cell("labels-700", 1, 260.0, background=True)
    cell("labels-350", 2, 100.0)  # no true twin for seed 2: left out
    rows = grid_rows(tmp_path)
    assert [(r["variant"], round(r["ratio"], 2)) for r in rows] == [
        ("labels-700 s0 (fast-inline)", 1.1), ("labels-700 s1 (fast-background)", 1.3)]
    assert grid_rows(tmp_path, ["labels-350"]) == []
    line = median_line(rows)
    assert "median wall ratio over 2 cells: 1.20x" in line and "cells over 1.1x: 1" in line

"""Learning checks on clips from a real env (Pendulum-v1, random actions), CPU, ~1 min."""

import time

import gymnasium as gym
import numpy as np
import pytest

from prefrl.learner import LearnerConfig, PreferenceLearner
from prefrl.reward import return_correlation
from prefrl.rollouts import collect_clips
from prefrl.types import Answer, ClipPair, Label

CLIP_LEN = 25


@pytest.fixture(scope="module")
def pendulum_clips():
    env = gym.make("Pendulum-v1")
    clips = collect_clips(env, 1400, CLIP_LEN, np.random.default_rng(123))
    return env, clips[:900], clips[900:]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def held_out_pairs(clips, n=2000, seed=7):
    rng = np.random.default_rng(seed)
    pairs = [ClipPair(*[clips[i] for i in rng.choice(len(clips), 2, replace=False)])
             for _ in range(n)]
    return (np.stack([p.left.obs for p in pairs]), np.stack([p.left.acts for p in pairs]),
            np.stack([p.right.obs for p in pairs]), np.stack([p.right.acts for p in pairs]),
            np.array([p.right.true_return > p.left.true_return for p in pairs]))


def fresh_accuracy(ensemble, data):
    lo, la, ro, ra, right_better = data
    pred = ensemble.clip_returns(ro, ra).mean(0) > ensemble.clip_returns(lo, la).mean(0)
    return float(np.mean(pred == right_better))


def make_learner(env, tmp_path, oracle, selector="random", labels=300, seed=0):
    return PreferenceLearner.create(
        env.observation_space, env.action_space,
        LearnerConfig(labels=labels, total_steps=1, selector=selector, oversample=10),
        tmp_path / f"{oracle}-{selector}-{seed}.sqlite", oracle=oracle, clip_len=CLIP_LEN,
        seed=seed)


@pytest.mark.parametrize("oracle,min_acc", [("perfect", 0.90), ("paper", 0.85)])
def test_ensemble_learns_the_true_reward(pendulum_clips, tmp_path, oracle, min_acc):
    env, pool, held_out = pendulum_clips
    learner = make_learner(env, tmp_path, oracle)
    for c in pool:
        learner.buffer.add_clip(c)
    assert learner.ask(0, n=300) == 300
    metrics = learner.update(epochs=40)
    stats = learner.last_stats
    acc = fresh_accuracy(learner.ensemble, held_out_pairs(held_out))
    agr = return_correlation(
        learner.ensemble.clip_returns(np.stack([c.obs for c in held_out]),
                                      np.stack([c.acts for c in held_out])).mean(0),
        np.array([c.true_return for c in held_out]))
    print(f"\n{oracle}: held-out pair accuracy {acc:.3f}, validation accuracy "
          f"{stats.val_acc:.3f} (n_val={stats.n_val}), spearman {agr.spearman:.3f}, "
          f"pearson {agr.pearson:.3f}, l2 {stats.l2:.2e}, ece {stats.ece:.3f}")
    assert acc >= min_acc
    assert agr.spearman >= 0.8
    # the diagnostics are all there and sane
    assert stats.n_val > 50 and stats.n_train + stats.n_val == 300
    assert len(stats.member_val_acc) == 3 and all(a > 0.7 for a in stats.member_val_acc)
    assert 0 < stats.l2 and sum(b.count for b in stats.calibration) == stats.n_val
    assert metrics["reward/val_acc"] == stats.val_acc
    learner.store.close()


def test_skips_are_stored_but_not_trained_on(pendulum_clips, tmp_path):
    env, pool, _ = pendulum_clips
    learner = make_learner(env, tmp_path, "perfect")
    for c in pool[:40]:
        learner.buffer.add_clip(c)
    learner.ask(0, n=20)
    n_before = len(learner.store.training_set())
    for a, b in zip(pool[:40:2], pool[1:40:2], strict=True):
        pair = ClipPair(a, b)
        if not learner.store.has_asked(pair.key):
            qid = learner.store.add_query(pair, "manual", 0.0)
            learner.store.add_label(Label(a.hash, b.hash, Answer.SKIP, query_id=qid))
    assert learner.store.n_labels(include_skips=True) > n_before
    assert len(learner.store.training_set()) == n_before
    learner.store.close()


def test_disagreement_beats_random_selection(pendulum_clips, tmp_path):
    """Active learning: 10 rounds of 20 labels; same seeds, same pool, same held-out pairs."""
    env, pool, held_out = pendulum_clips
    data = held_out_pairs(held_out)
    curves: dict[str, list[list[float]]] = {"random": [], "disagreement": []}
    for selector in curves:
        for seed in (0, 1, 2):
            learner = make_learner(env, tmp_path, "perfect", selector, labels=200, seed=seed)
            for c in pool:
                learner.buffer.add_clip(c)
            accs = []
            for r in range(10):
                learner.ask(0, n=20)
                learner.update(epochs=30 if r == 0 else 10)
                accs.append(fresh_accuracy(learner.ensemble, data))
            curves[selector].append(accs)
            learner.store.close()
    mean = {k: np.mean(v, axis=0) for k, v in curves.items()}
    print("\nheld-out accuracy per 20 labels (mean of 3 seeds)")
    for k, v in mean.items():
        print(f"{k:>12}: " + " ".join(f"{a:.3f}" for a in v))
    # accuracy per label over the second half of the budget (100-200 labels)
    assert mean["disagreement"][5:].mean() > mean["random"][5:].mean()


def test_background_update_swaps_the_model_in_only_when_finished(pendulum_clips, tmp_path):
    env, pool, held_out = pendulum_clips
    learners = [PreferenceLearner.create(
        env.observation_space, env.action_space,
        LearnerConfig(labels=80, total_steps=1, update_epochs=3, background=bg),
        tmp_path / f"bg{bg}.sqlite", oracle="perfect", clip_len=CLIP_LEN, seed=1)
        for bg in (False, True)]
    inline, bg = learners
    for learner in learners:
        for c in pool[:300]:
            learner.buffer.add_clip(c)
        assert learner.ask(0, n=80) == 80
    obs = np.stack([c.obs[0] for c in held_out[:50]])
    acts = np.stack([c.acts[0] for c in held_out[:50]])
    before = bg.ensemble.predict(obs, acts)[0]
    assert bg.start_update() and bg.updating and not bg.start_update()
    np.testing.assert_array_equal(bg.ensemble.predict(obs, acts)[0], before)  # RL's model
    saved = bg.state_dict()  # mid-update: the live model and the optimisers it started from
    assert saved["n_updates"] == 0 and saved["trainer"]["l2"] == inline.trainer.l2
    np.testing.assert_array_equal(saved["trainer"]["rng"]["state"]["state"],
                                  inline.trainer.rng.bit_generator.state["state"]["state"])
    metrics = bg.finish_update(wait=True)
    assert metrics is not None and metrics["reward/val_acc"] > 0.6
    assert not bg.updating and bg.n_updates == 1 and bg.trained_on == 80
    after = bg.ensemble.predict(obs, acts)[0]
    assert not np.allclose(after, before)
    # the same update inline gives the same model: only *when* it goes live differs
    inline.update()
    np.testing.assert_allclose(inline.ensemble.predict(obs, acts)[0], after, atol=1e-5)
    # close() cancels a long update in flight instead of waiting for it
    assert bg.start_update(epochs=100_000)
    t0 = time.perf_counter()
    bg.close()
    assert time.perf_counter() - t0 < 30 and not bg.updating and bg.n_updates == 1
    for learner in learners:
        learner.store.close()

"""The kcenter-disagreement selector: diverse pairs among the disputed half."""

import tempfile

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefrl.learner import LearnerConfig, PreferenceLearner
from prefrl.query import (
    DisagreementSelector,
    KCenterDisagreementSelector,
    greedy_kcenter,
    make_selector,
    pair_features,
)
from prefrl.types import Clip, ClipPair


class FlatEnsemble:
    """Every member scores every clip 0, except member 0 which reads obs[0, 0]."""

    members = (0, 1, 2)

    def rows_per_batch(self, x, limit):
        return 4

    def clip_returns(self, obs, acts):
        out = np.zeros((3, len(obs)), np.float32)
        out[0] = obs[:, 0, 0]
        return out


class ZeroEnsemble(FlatEnsemble):
    """Every member scores every clip 0: all pairs are equally disputed."""

    def clip_returns(self, obs, acts):
        return np.zeros((3, len(obs)), np.float32)


def make_clip(obs):
    obs = np.asarray(obs, np.float32)
    return Clip(obs=obs, acts=np.zeros((len(obs), 1), np.float32),
                true_rews=np.zeros(len(obs), np.float32), env_id="fake")


def fallen(rng):
    """A clip lying still at the limit, with a touch of noise (they all look alike)."""
    obs = np.tile([1.0, 0.0, 1.57, 0.0], (5, 1)) + rng.normal(0, 1e-3, (5, 4))
    return make_clip(obs)


def test_diverse_pairs_win_over_look_alikes():
    rng = np.random.default_rng(0)
    # equally disputed candidates: look-alike pairs of fallen clips, and 4 distinct pairs
    look_alikes = [ClipPair(fallen(rng), fallen(rng)) for _ in range(12)]
    distinct = [ClipPair(fallen(rng), make_clip(rng.normal(0, 1, (5, 4)) + [1.0, 0, 0, 0]))
                for _ in range(4)]
    candidates = look_alikes[:4] + distinct + look_alikes[4:]
    ens = ZeroEnsemble()
    plain = DisagreementSelector().select(candidates, 4, ens, rng)
    spread = KCenterDisagreementSelector().select(candidates, 4, ens, rng)
    assert sum(p in distinct for p, _ in plain) == 0  # stable order: the first four
    assert sum(p in distinct for p, _ in spread) >= 3
    assert len({p.key for p, _ in spread}) == 4
    assert [s for _, s in spread] == sorted((s for _, s in spread), reverse=True)


def test_only_the_disputed_half_is_eligible():
    rng = np.random.default_rng(1)
    pairs = [ClipPair(make_clip(rng.normal(0, 1, (5, 4)) + [i, 0, 0, 0]),
                      make_clip(rng.normal(0, 1, (5, 4)))) for i in range(10)]
    # member 0's return of the left clip grows with i: the variance of P(right) grows with i
    chosen = KCenterDisagreementSelector().select(pairs, 3, FlatEnsemble(), rng)
    assert all(pairs.index(p) >= 5 for p, _ in chosen)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 50), st.integers(0, 10**6))
def test_kcenter_picks_distinct_rows_and_covers_far_points(m, n, seed):
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(m, 3))
    picked = greedy_kcenter(feats, n)
    assert len(picked) == min(n, m) == len(set(picked))
    if n >= 2 and m >= 2:  # the second pick is the farthest row from the first
        d = np.linalg.norm(feats - feats[picked[0]], axis=1)
        assert d[picked[1]] == pytest.approx(d.max())


def test_long_features_are_projected_and_images_refused():
    rng = np.random.default_rng(2)
    pairs = [ClipPair(make_clip(rng.normal(size=(50, 30))), make_clip(rng.normal(size=(50, 30))))
             for _ in range(6)]
    assert pair_features(pairs, max_dims=64).shape == (6, 64)
    assert pair_features(pairs[:2], max_dims=10_000).shape == (2, 2 * 50 * 31)
    img = Clip(obs=np.zeros((3, 8, 8, 1), np.uint8), acts=np.zeros(3, np.int64),
               true_rews=np.zeros(3, np.float32), env_id="fake")
    img2 = Clip(obs=np.ones((3, 8, 8, 1), np.uint8), acts=np.zeros(3, np.int64),
                true_rews=np.zeros(3, np.float32), env_id="fake")
    with pytest.raises(ValueError, match="needs vector observations"):
        pair_features([ClipPair(img, img2)])


def test_image_envs_are_refused_up_front():
    from prefrl.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="needs vector observations"):
        TrainConfig(env="Pong", selector="kcenter-disagreement").resolve()
    assert TrainConfig(env="Pendulum", selector="kcenter-disagreement").resolve()


def test_learner_runs_with_the_selector():
    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(3)
    clips = [Clip(obs=rng.normal(size=(4, 3)).astype(np.float32),
                  acts=rng.normal(size=(4, 1)).astype(np.float32),
                  true_rews=rng.normal(size=4).astype(np.float32), env_id="Pendulum-v1")
             for _ in range(8)]
    assert make_selector("kcenter-disagreement").name == "kcenter-disagreement"
    with tempfile.TemporaryDirectory() as d:
        learner = PreferenceLearner.create(
            env.observation_space, env.action_space,
            LearnerConfig(labels=100, total_steps=10, selector="kcenter-disagreement",
                          oversample=4),
            f"{d}/s.sqlite", oracle="perfect", clip_len=4, seed=3,
        )
        for c in clips:
            learner.buffer.add_clip(c)
        asked = learner.ask(0, n=5) + learner.ask(0, n=5)
        keys = [q.pair_key for q in learner.store.queries()]
        assert asked == 10 == len(set(keys))
        assert {q.selector for q in learner.store.queries()} == {"kcenter-disagreement"}
        learner.store.close()

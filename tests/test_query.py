import tempfile

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prefrl.learner import LearnerConfig, PreferenceLearner
from prefrl.query import (
    DisagreementSelector,
    EntropySelector,
    LabelSchedule,
    RandomSelector,
    make_selector,
)
from prefrl.types import Clip, ClipPair


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(0, 5000),
    total_steps=st.integers(1, 10**8),
    frac=st.floats(0, 1),
    tau=st.floats(1.0, 1e8),
    n_checks=st.integers(1, 60),
    data=st.data(),
)
def test_schedule_spends_exactly_the_budget(total, total_steps, frac, tau, n_checks, data):
    s = LabelSchedule(total, total_steps, frac, tau)
    steps = sorted(data.draw(st.lists(st.integers(0, total_steps), min_size=n_checks,
                                      max_size=n_checks)))
    asked, prev_target = 0, 0
    assert s.target(0) == s.n_pretrain
    for t in steps:
        target = s.target(t)
        assert prev_target <= target <= total  # monotone, never over budget
        prev_target = target
        asked += s.due(t, asked)
        assert asked == target
    asked += s.due(total_steps, asked)  # the run's last step
    assert asked == total
    assert s.due(total_steps + 1, asked) == 0


def test_schedule_rate_decays_like_the_paper():
    s = LabelSchedule(10_000, 10_000_000, pretrain_frac=0.0, tau=2e6)
    early = s.target(1_000_000) - s.target(0)
    late = s.target(10_000_000) - s.target(9_000_000)
    # rate ~ tau / (T + tau): between T~0.5M and T~9.5M it falls by ~ (9.5+2)/(0.5+2) = 4.6x
    assert 3.5 < early / late < 5.5


def test_schedule_rejects_bad_settings():
    with pytest.raises(ValueError):
        LabelSchedule(-1, 10)
    with pytest.raises(ValueError):
        LabelSchedule(10, 0)
    with pytest.raises(ValueError):
        LabelSchedule(10, 10, pretrain_frac=1.5)


class FakeEnsemble:
    """Members' clip returns are the clip's obs[0, i] (member i)."""

    members = (0, 1, 2)

    def rows_per_batch(self, x, limit):
        return 2  # clips are scored two at a time: exercises the chunking

    def clip_returns(self, obs, acts):
        return np.moveaxis(obs[:, 0, :], 1, 0)


def clip(values, tag):
    obs = np.zeros((3, len(values)), np.float32)
    obs[0] = values
    return Clip(obs=obs, acts=np.zeros((3, 1), np.float32), true_rews=np.full(3, tag, np.float32),
                env_id="fake")


def test_disagreement_and_entropy_pick_the_uncertain_pair():
    base = clip([0, 0, 0], 0)
    agree = ClipPair(base, clip([5, 5, 5], 1))        # all members: right is much better
    split = ClipPair(base, clip([4, -4, 4], 2))       # members disagree strongly
    unsure = ClipPair(base, clip([0.01, 0.0, -0.01], 3))  # members agree it is a coin flip
    rng = np.random.default_rng(0)
    ens = FakeEnsemble()
    assert DisagreementSelector().select([agree, unsure, split], 1, ens, rng)[0][0] is split
    assert EntropySelector().select([agree, split, unsure], 1, ens, rng)[0][0] is unsure
    picked = RandomSelector().select([agree, split, unsure], 3, ens, rng)
    assert {id(p) for p, _ in picked} == {id(agree), id(split), id(unsure)}


def test_make_selector_names():
    assert make_selector("disagreement", 7).oversample == 7
    with pytest.raises(ValueError, match="known: random, disagreement, entropy"):
        make_selector("psychic")


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=1, max_size=8), st.integers(0, 3))
def test_learner_never_asks_about_a_pair_twice(batches, seed):
    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(seed)
    clips = [
        Clip(obs=rng.normal(size=(4, 3)).astype(np.float32),
             acts=rng.normal(size=(4, 1)).astype(np.float32),
             true_rews=rng.normal(size=4).astype(np.float32), env_id="Pendulum-v1")
        for _ in range(7)  # 21 distinct pairs: batches exhaust them
    ]
    with tempfile.TemporaryDirectory() as d:
        learner = PreferenceLearner.create(
            env.observation_space, env.action_space,
            LearnerConfig(labels=100, total_steps=10, selector="disagreement", oversample=3),
            f"{d}/s.sqlite", oracle="perfect", clip_len=4, seed=seed,
        )
        for c in clips:
            learner.buffer.add_clip(c)
        asked = sum(learner.ask(0, n=b) for b in batches)
        keys = [q.pair_key for q in learner.store.queries()]
        assert len(keys) == len(set(keys)) == asked == min(sum(batches), 21)
        assert learner.store.n_labels() == asked
        learner.store.close()


def test_clip_returns_are_cached_per_model_version(monkeypatch):
    from prefrl.query import clip_returns
    from prefrl.reward import RewardEnsemble

    rng = np.random.default_rng(0)
    obs_space, act_space = gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (1,))
    ens = RewardEnsemble.from_spaces(obs_space, act_space, seed=0, device="cpu")
    clips = [Clip(rng.normal(size=(5, 3)).astype(np.float32),
                  rng.normal(size=(5, 1)).astype(np.float32),
                  rng.normal(size=5).astype(np.float32), env_id="x") for _ in range(6)]
    calls = []
    real = ens.clip_returns
    monkeypatch.setattr(ens, "clip_returns", lambda o, a: calls.append(len(o)) or real(o, a))
    first = clip_returns(ens, clips[:4] + clips[:2])  # duplicates scored once
    assert calls == [4] and first.shape == (3, 6)
    again = clip_returns(ens, clips)  # only the two unseen clips are scored
    assert calls == [4, 2]
    np.testing.assert_allclose(again[:, :4], first[:, :4])
    with torch.no_grad():  # a model update invalidates every cached return
        for p in ens.parameters():
            p.add_(0.1)
    ens.mark_changed()
    after = clip_returns(ens, clips[:4])
    assert calls == [4, 2, 4] and not np.allclose(after, first[:, :4])
    np.testing.assert_allclose(after, real(np.stack([c.obs for c in clips[:4]]),
                                           np.stack([c.acts for c in clips[:4]])), atol=1e-6)

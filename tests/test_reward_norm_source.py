"""What the learned reward is standardised on after an update (``--reward-norm``)."""

import gymnasium as gym
import numpy as np
import pytest

from prefrl.learner import LearnerConfig, PreferenceLearner
from prefrl.rollouts import collect_clips
from prefrl.types import Clip


def learner_after_update(tmp_path, source: str) -> PreferenceLearner:
    env = gym.make("Pendulum-v1")
    learner = PreferenceLearner.create(
        env.observation_space, env.action_space,
        LearnerConfig(labels=30, total_steps=1000, norm_source=source, norm_clips=12),
        tmp_path / f"{source}.sqlite", oracle="perfect", clip_len=10, seed=0)
    for c in collect_clips(env, 40, 10, np.random.default_rng(0)):
        learner.buffer.add_clip(c)
    learner.ask(env_step=0)
    # then the agent settles into one state: its newest clips are all alike
    still = np.tile(np.array([1.0, 0.0, 0.0], np.float32), (10, 1))
    for i in range(12):
        learner.buffer.add_clip(Clip(still, np.zeros((10, 1), np.float32),
                                     np.full(10, -0.1 * i, np.float32), env_id="Pendulum-v1",
                                     step=1000 + i))
    learner.update(epochs=2)
    return learner


@pytest.mark.parametrize("source", ["recent", "labelled"])
def test_reward_is_standardised_on_the_chosen_steps(tmp_path, source):
    learner = learner_after_update(tmp_path, source)
    ens = learner.ensemble
    still = learner.buffer.recent(1)[0]
    labelled = [learner.data.clips.get(h) for h in learner.data.clips.hashes()]
    lab_obs = np.concatenate([o for o, _ in labelled])
    lab_acts = np.concatenate([a for _, a in labelled])
    r_still, _ = ens.predict(still.obs, still.acts)
    r_lab, _ = ens.predict(lab_obs, lab_acts)
    learner.store.close()
    if source == "recent":
        # fit on identical steps: they get the mean (0), and the spread of the rest is blown up
        assert np.abs(r_still).max() < 0.05
        assert r_lab.std() > 100
    else:
        # fit on the agent's steps and the labelled ones: a spread of the order of 1
        assert 0.2 < r_lab.std() < 2.0


def test_an_unknown_norm_source_is_refused():
    with pytest.raises(ValueError, match="norm_source must be 'recent' or 'labelled'"):
        LearnerConfig(labels=30, total_steps=1000, norm_source="labeled")

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from prefrl.oracles import TEACHER_PRESETS, Oracle, SyntheticOracle, TeacherConfig, teacher_config
from prefrl.types import Answer, Clip, ClipPair, Label

_counter = iter(range(10**9))


def clip(rews) -> Clip:
    """A clip with the given rewards (unique obs so every clip has its own hash)."""
    rews = np.atleast_1d(np.asarray(rews, np.float32))
    uid = next(_counter)
    return Clip(obs=np.full((len(rews), 1), uid, np.float32), acts=np.zeros((len(rews), 1)),
                true_rews=rews, env_id="test")


def pair(r_left, r_right) -> ClipPair:
    return ClipPair(clip(r_left), clip(r_right))


def oracle(config="perfect", seed=0) -> SyntheticOracle:
    return SyntheticOracle(config, rng=np.random.default_rng(seed))


def binom_tol(p: float, n: int, z: float = 4.5) -> float:
    return z * math.sqrt(p * (1 - p) / n) + 1e-9


def test_perfect_picks_higher_return():
    o = oracle()
    rng = np.random.default_rng(1)
    for _ in range(500):
        rl, rr = rng.normal(size=(2, 5))
        a = o.answer(pair(rl, rr))
        diff = float(np.float32(rr).sum() - np.float32(rl).sum())
        assert a == (Answer.RIGHT if diff > 0 else Answer.LEFT if diff < 0 else Answer.EQUAL)
    assert o.answer(pair([1.0, 2.0], [2.0, 1.0])) == Answer.EQUAL  # exact tie
    assert o.name == "synthetic:perfect"


def test_paper_error_rate_is_about_five_percent():
    o = oracle("paper", seed=2)
    rng = np.random.default_rng(3)
    n, wrong = 6000, 0
    for _ in range(n):
        rl = float(rng.uniform(0, 10))
        rr = rl + float(rng.choice([-1, 1])) * float(rng.uniform(1, 5))
        a = o.answer(pair(rl, rr))
        assert a in (Answer.LEFT, Answer.RIGHT)
        wrong += a != (Answer.RIGHT if rr > rl else Answer.LEFT)
    assert abs(wrong / n - 0.05) < binom_tol(0.05, n)


def test_mistake_error_rate_is_about_ten_percent():
    o = oracle("mistake", seed=4)
    n = 5000
    wrong = sum(o.answer(pair(0.0, 1.0)) == Answer.LEFT for _ in range(n))
    assert abs(wrong / n - 0.1) < binom_tol(0.1, n)


@pytest.mark.parametrize("diff", [0.0, 0.5, 1.0, 2.5, -1.5])
def test_noisy_matches_boltzmann(diff):
    o = oracle("noisy", seed=5)
    n = 4000
    p = 1 / (1 + math.exp(-1.0 * diff))
    rights = sum(o.answer(pair([0.0, 0.0], [diff, 0.0])) == Answer.RIGHT for _ in range(n))
    assert abs(rights / n - p) < binom_tol(p, n)


def test_beta_scales_rationality():
    o = oracle(TeacherConfig(beta=4.0), seed=6)
    n = 4000
    p = 1 / (1 + math.exp(-4.0 * 0.5))
    rights = sum(o.answer(pair(0.0, 0.5)) == Answer.RIGHT for _ in range(n))
    assert abs(rights / n - p) < binom_tol(p, n)


def test_myopic_weights_late_steps():
    early = np.zeros(10, np.float32)
    early[0] = 1.0  # undiscounted 1.0, myopic 0.9**9 = 0.387
    late = np.zeros(10, np.float32)
    late[-1] = 0.5  # undiscounted 0.5, myopic 0.5
    p = ClipPair(clip(early), clip(late))
    assert oracle("perfect").answer(p) == Answer.LEFT
    myopic = oracle("myopic")
    assert myopic.answer(p) == Answer.RIGHT
    assert myopic.answer(p.swapped()) == Answer.LEFT
    r = np.arange(1, 6, dtype=np.float32)
    expected = sum(0.9 ** (4 - t) * r[t] for t in range(5))
    assert myopic.clip_return(clip(r)) == pytest.approx(expected)


def test_equal_preset_answers_equal_for_close_returns():
    o = oracle("equal", seed=7)
    rng = np.random.default_rng(8)
    for _ in range(300):  # returns with std ~ 1
        o.answer(pair(float(rng.normal()), float(rng.normal())))
    assert o.return_std == pytest.approx(1.0, abs=0.15)
    assert o.answer(pair(0.0, 0.02)) == Answer.EQUAL  # |diff| < 0.1 * std
    assert o.answer(pair(0.3, 0.0)) == Answer.LEFT
    assert o.answer(pair(0.0, 1.0)) == Answer.RIGHT
    absolute = oracle(TeacherConfig(equal_threshold=0.5, equal_frac=0.9))
    assert absolute.answer(pair(0.0, 0.4)) == Answer.EQUAL  # threshold overrides equal_frac
    assert absolute.answer(pair(0.0, 0.6)) == Answer.RIGHT
    assert absolute.name == "synthetic:custom"


def test_skip_preset_skips_pairs_of_bad_clips():
    o = oracle("skip", seed=9)
    rng = np.random.default_rng(10)
    for _ in range(500):  # returns uniform on [0, 100): 10th percentile ~ 10
        o.answer(pair(float(rng.uniform(0, 100)), float(rng.uniform(0, 100))))
    assert o.answer(pair(2.0, 5.0)) == Answer.SKIP
    assert o.answer(pair(2.0, 50.0)) == Answer.RIGHT
    assert o.answer(pair(20.0, 5.0)) == Answer.LEFT
    absolute = oracle(TeacherConfig(skip_threshold=0.0))
    assert absolute.answer(pair(-1.0, -2.0)) == Answer.SKIP
    assert absolute.answer(pair(-1.0, 1.0)) == Answer.RIGHT
    # skip is checked before equal
    both = oracle(TeacherConfig(skip_threshold=0.0, equal_threshold=10.0))
    assert both.answer(pair(-1.0, -1.5)) == Answer.SKIP
    assert both.answer(pair(1.0, 1.5)) == Answer.EQUAL


def test_first_pair_is_never_skipped_by_quantile():
    o = oracle("skip")
    assert o.answer(pair(-5.0, -4.0)) == Answer.RIGHT


def _stream(o: SyntheticOracle, seed: int, n: int) -> list[Answer]:
    rng = np.random.default_rng(seed)
    return [o.answer(pair(rng.normal(size=3), rng.normal(size=3))) for _ in range(n)]


_MIXED = TeacherConfig(beta=2.0, gamma=0.95, eps_flip=0.05, eps_random=0.1, equal_frac=0.1,
                       skip_quantile=0.2)


@pytest.mark.parametrize("config", ["paper", "noisy", _MIXED])
def test_same_seed_same_answers(config):
    a = _stream(oracle(config, seed=11), seed=12, n=300)
    b = _stream(oracle(config, seed=11), seed=12, n=300)
    c = _stream(oracle(config, seed=13), seed=12, n=300)
    assert a == b and a != c


def test_state_dict_roundtrip_continues_identically():
    o = oracle(_MIXED, seed=14)
    _stream(o, seed=15, n=200)
    state = json.loads(json.dumps(o.state_dict()))  # JSON-able
    expected = _stream(o, seed=16, n=300)
    resumed = oracle(_MIXED, seed=999)
    resumed.load_state_dict(state)
    assert _stream(resumed, seed=16, n=300) == expected
    assert resumed.return_std == pytest.approx(o.return_std)


def test_seen_returns_window_is_bounded():
    from prefrl.oracles import synthetic

    o = oracle("skip")
    n = synthetic.SEEN_RETURNS_MAX // 2 + 10
    for i in range(n):
        o.answer(pair(float(i), float(i) + 0.5))
    state = o.state_dict()
    assert len(state["seen"]) == synthetic.SEEN_RETURNS_MAX
    assert state["seen"][-1] == float(n - 1) + 0.5  # oldest first, newest last
    o2 = oracle("skip")
    o2.load_state_dict(state)
    assert o2.state_dict()["seen"] == state["seen"]


def test_label_fields():
    o = oracle("noisy")
    p = pair(0.0, 100.0)
    lab = o.label(p, query_id=3)
    assert isinstance(lab, Label)
    assert (lab.left, lab.right) == (p.left.hash, p.right.hash)
    assert lab.answer == Answer.RIGHT and lab.mu == 1.0
    assert lab.source == "synthetic" and lab.annotator == "synthetic:noisy"
    assert lab.response_time_s == 0.0 and lab.query_id == 3
    assert oracle(TeacherConfig(beta=1.0)).name == "synthetic:noisy"  # equal to a preset
    assert oracle(TeacherConfig(beta=3.0)).label(p).annotator == "synthetic:custom"


def test_answer_many_and_abstract_base():
    o = oracle()
    assert o.answer_many([pair(0.0, 1.0), pair(1.0, 0.0)]) == [Answer.RIGHT, Answer.LEFT]
    with pytest.raises(TypeError):
        Oracle()  # type: ignore[abstract]


def test_presets():
    assert set(TEACHER_PRESETS) == {
        "perfect", "paper", "noisy", "mistake", "myopic", "equal", "skip"
    }
    assert teacher_config("perfect") == TeacherConfig()
    assert teacher_config("paper").eps_random == 0.1
    assert teacher_config("myopic").gamma == 0.9
    with pytest.raises(ValueError, match="valid names: perfect, paper, noisy"):
        teacher_config("genius")
    with pytest.raises(ValueError, match="genius"):
        SyntheticOracle("genius", rng=np.random.default_rng(0))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"beta": -1.0},
        {"beta": math.nan},
        {"gamma": 0.0},
        {"gamma": 1.5},
        {"eps_flip": -0.1},
        {"eps_random": 1.1},
        {"equal_frac": -0.1},
        {"equal_frac": math.inf},
        {"equal_threshold": -1.0},
        {"skip_quantile": 1.0},
        {"skip_quantile": -0.5},
        {"skip_threshold": math.nan},
    ],
)
def test_invalid_config_raises(kwargs):
    field = next(iter(kwargs))
    with pytest.raises(ValueError, match=field):
        TeacherConfig(**kwargs)

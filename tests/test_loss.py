import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prefrl.reward.loss import log_pref_probs, misclick_bt_loss

returns = st.floats(-50, 50, allow_nan=False)
labels = st.sampled_from([0.0, 0.5, 1.0])
eps_s = st.floats(0.0, 0.5)


def t(x):
    return torch.tensor([x], dtype=torch.float64)


@settings(max_examples=200, deadline=None)
@given(returns, returns, labels, eps_s)
def test_swapping_clips_and_label_gives_same_loss(rl, rr, mu, eps):
    a = misclick_bt_loss(t(rl), t(rr), t(mu), eps)
    b = misclick_bt_loss(t(rr), t(rl), t(1 - mu), eps)
    assert torch.allclose(a, b, atol=1e-10)


@settings(max_examples=200, deadline=None)
@given(returns, returns, labels, st.floats(0.01, 0.5))
def test_misclick_term_bounds_the_loss(rl, rr, mu, eps):
    loss = float(misclick_bt_loss(t(rl), t(rr), t(mu), eps))
    assert 0 <= loss <= -math.log(eps / 2) + 1e-9


def test_confident_wrong_prediction_is_bounded_without_eps_it_is_not():
    wrong = misclick_bt_loss(t(1000.0), t(0.0), t(1.0), 0.1)
    assert float(wrong) == pytest_approx(-math.log(0.05), 1e-3)
    unbounded = misclick_bt_loss(t(1000.0), t(0.0), t(1.0), 0.0)
    assert float(unbounded) > 100


def pytest_approx(x, tol):
    import pytest

    return pytest.approx(x, abs=tol)


@settings(max_examples=200, deadline=None)
@given(returns, returns, eps_s)
def test_probabilities_sum_to_one(rl, rr, eps):
    lp, rp = log_pref_probs(t(rl), t(rr), eps)
    assert float(lp.exp() + rp.exp()) == pytest_approx(1.0, 1e-9)


@given(returns, eps_s)
def test_tie_label_is_minimised_at_equal_returns(r, eps):
    d = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    loss = misclick_bt_loss(t(r) + d, t(r), t(0.5), eps)
    loss.backward()
    assert abs(float(d.grad)) < 1e-9
    # and any difference costs more than none
    assert float(misclick_bt_loss(t(r + 1.0), t(r), t(0.5), eps)) > float(loss.detach())


def test_zero_eps_is_binary_cross_entropy_with_logits():
    rng = np.random.default_rng(0)
    rl, rr = torch.tensor(rng.normal(size=50)), torch.tensor(rng.normal(size=50))
    mu = torch.tensor(rng.integers(0, 2, 50).astype(float))
    ref = torch.nn.functional.binary_cross_entropy_with_logits(rr - rl, mu)
    assert torch.allclose(misclick_bt_loss(rl, rr, mu, 0.0), ref)


def test_correct_side_lowers_the_loss():
    assert misclick_bt_loss(t(0.0), t(3.0), t(1.0)) < misclick_bt_loss(t(0.0), t(-3.0), t(1.0))


def test_shape_mismatch_and_bad_eps_raise():
    import pytest

    with pytest.raises(ValueError, match="shapes differ"):
        misclick_bt_loss(torch.zeros(3), torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="eps"):
        misclick_bt_loss(torch.zeros(1), torch.zeros(1), torch.zeros(1), eps=1.0)

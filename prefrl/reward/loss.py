"""Misclick-aware Bradley-Terry preference loss (Christiano et al. 2017, section 2.2.3).

The teacher answers with the Bradley-Terry probability most of the time and at random with
probability ``eps`` (the paper's 10%):

    P(left)  = (1 - eps) * sigmoid(R(left) - R(right)) + eps / 2
    P(right) = (1 - eps) * sigmoid(R(right) - R(left)) + eps / 2

The loss is the cross-entropy against the label target ``mu`` = P(right is better)
(0 = left, 1 = right, 0.5 = equal). Skips never reach the loss. Thanks to the ``eps / 2`` floor a
confidently wrong prediction costs at most ``-log(eps / 2)`` (3.0 for eps = 0.1).

>>> import torch
>>> loss = misclick_bt_loss(torch.tensor([10.0]), torch.tensor([0.0]), torch.tensor([1.0]))
>>> round(float(loss), 3)  # confidently wrong, bounded by -log(0.05)
2.995
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def log_pref_probs(
    ret_left: torch.Tensor, ret_right: torch.Tensor, eps: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(log P(left), log P(right))`` under the misclick model, computed stably."""
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"misclick eps must be in [0, 1), got {eps}")
    d = ret_left - ret_right
    log_sig_l = F.logsigmoid(d)
    log_sig_r = F.logsigmoid(-d)
    if eps == 0.0:
        return log_sig_l, log_sig_r
    log_keep = math.log1p(-eps)
    log_rand = torch.full_like(d, math.log(eps) - math.log(2.0))
    return (
        torch.logaddexp(log_sig_l + log_keep, log_rand),
        torch.logaddexp(log_sig_r + log_keep, log_rand),
    )


def misclick_bt_loss(
    ret_left: torch.Tensor,
    ret_right: torch.Tensor,
    mu: torch.Tensor,
    eps: float = 0.1,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy of the misclick-aware Bradley-Terry model.

    Args:
        ret_left: predicted returns of the left clips, shape ``(B,)`` (or any shape matching).
        ret_right: predicted returns of the right clips.
        mu: targets, P(right is better): 0, 0.5 or 1 (soft values in [0, 1] also work).
        eps: probability of a random answer.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    if ret_left.shape != ret_right.shape or ret_left.shape != mu.shape:
        raise ValueError(
            f"shapes differ: left {tuple(ret_left.shape)}, right {tuple(ret_right.shape)}, "
            f"mu {tuple(mu.shape)}"
        )
    log_l, log_r = log_pref_probs(ret_left, ret_right, eps)
    mu = mu.to(log_l.dtype)
    loss = -((1.0 - mu) * log_l + mu * log_r)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"unknown reduction {reduction!r}")


def p_right(ret_left: torch.Tensor, ret_right: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry probability that the right clip is better (no misclick term)."""
    return torch.sigmoid(ret_right - ret_left)

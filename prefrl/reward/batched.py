"""K same-shaped MLP reward members as one model with stacked weights (for training).

:class:`StackedMLP` copies the weights of K :class:`~prefrl.reward.nets.MLPRewardNet` members
into ``(K, in, out)`` tensors, so one batched matmul per layer runs every member: each on its
own inputs (``(K, N, ...)``, a bootstrap batch per member) or all on the same ones (``(N, ...)``,
evaluation). The loss is the sum of the members' losses, so each member gets exactly its own
gradient. :func:`stack_adam` / :func:`unstack_adam` move Adam's moments between the K
per-member optimisers and the stacked one, so outside training the members and their
optimisers stay the only state (checkpoints are unchanged).

>>> import torch
>>> from prefrl.reward.nets import MLPRewardNet
>>> members = [MLPRewardNet(3, "box", 1) for _ in range(2)]
>>> stacked = StackedMLP(members)
>>> x, a = torch.randn(5, 3), torch.randn(5, 1)
>>> ref = torch.stack([m(x, a) for m in members])
>>> bool(torch.allclose(stacked(x, a), ref, atol=1e-6))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from prefrl.reward.nets import MLPRewardNet


def can_stack(members: Sequence[nn.Module]) -> bool:
    """Whether ``members`` are MLPs of one configuration without dropout."""
    if not members or not all(isinstance(m, MLPRewardNet) for m in members):
        return False
    configs = [m.config() for m in members if isinstance(m, MLPRewardNet)]
    return configs[0].get("dropout", 0.0) == 0.0 and all(c == configs[0] for c in configs)


def _linears(m: nn.Module) -> list[nn.Linear]:
    body: Any = m.body
    return [layer for layer in body if isinstance(layer, nn.Linear)]


class StackedMLP:
    """Stacked copy of K MLP members; see the module docstring."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        if not can_stack(members):
            raise ValueError("StackedMLP needs MLP members of one configuration, no dropout")
        self.members = list(members)
        m0 = self.members[0]
        assert isinstance(m0, MLPRewardNet)
        self.encode, self.obs_in, self.use_actions = m0._inputs, m0.obs_in, m0.use_actions
        lins = [_linears(m) for m in self.members]
        self.weights = [nn.Parameter(torch.stack([ls[i].weight.detach().T for ls in lins]))
                        for i in range(len(lins[0]))]  # (K, in, out)
        self.biases = [nn.Parameter(torch.stack([ls[i].bias.detach() for ls in lins])[:, None])
                       for i in range(len(lins[0]))]  # (K, 1, out)
        self.in_mean = torch.zeros(0)
        self.in_std = torch.zeros(0)
        self.load_members()

    @property
    def k(self) -> int:
        """Number of members."""
        return len(self.members)

    def parameters(self) -> list[nn.Parameter]:
        """Stacked parameters in the members' own order (w0, b0, w1, b1, ...)."""
        return [p for wb in zip(self.weights, self.biases, strict=True) for p in wb]

    @torch.no_grad()
    def load_members(self) -> None:
        """Copy the members' current weights and input statistics in."""
        lins = [_linears(m) for m in self.members]
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            w.copy_(torch.stack([ls[i].weight.T for ls in lins]))
            b.copy_(torch.stack([ls[i].bias for ls in lins])[:, None])
        self.in_mean = torch.stack([m.in_mean for m in self.members])[:, None]  # type: ignore
        self.in_std = torch.stack([m.in_std for m in self.members])[:, None]  # type: ignore

    @torch.no_grad()
    def write_members(self) -> None:
        """Copy the stacked weights back into the members."""
        for k, m in enumerate(self.members):
            for i, layer in enumerate(_linears(m)):
                layer.weight.copy_(self.weights[i][k].T)
                layer.bias.copy_(self.biases[i][k, 0])

    def snapshot(self) -> list[torch.Tensor]:
        """Detached copies of the parameters (for restoring the best epoch)."""
        return [p.detach().clone() for p in self.parameters()]

    @torch.no_grad()
    def restore(self, snap: list[torch.Tensor]) -> None:
        """Inverse of :meth:`snapshot`."""
        for p, s in zip(self.parameters(), snap, strict=True):
            p.copy_(s)

    def __call__(self, obs: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        """Raw per-step rewards ``(K, N)`` of every member on the same ``obs (N, ...)``."""
        return self._body(self.encode(obs, acts)[None])

    def per_member(self, obs: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        """Raw rewards ``(K, N)``, member k on its own ``obs[k]``, ``acts[k]`` (``(K, N, ...)``)."""
        k, n = obs.shape[:2]
        x = self.encode(obs.reshape(k * n, *obs.shape[2:]), acts.reshape(k * n, *acts.shape[2:]))
        return self._body(x.reshape(k, n, -1))

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.in_mean) / self.in_std
        if not self.use_actions:
            x = x[..., : self.obs_in]
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w) if x.shape[0] == self.k else torch.matmul(x, w) + b
            if i < last:
                x = nn.functional.leaky_relu(x, 0.01)
        return x.squeeze(-1)

    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """Clip each member's gradient to ``max_norm`` on its own (clip_grad_norm_ per member)."""
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if not grads:
            return torch.zeros(self.k)
        sq = torch.stack([g.pow(2).reshape(self.k, -1).sum(1) for g in grads]).sum(0)
        norms = sq.sqrt()
        coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))
        return norms


_ADAM_KEYS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


def _to_stacked(t: torch.Tensor, is_weight: bool) -> torch.Tensor:
    return t.T if is_weight else t[None]


@torch.no_grad()
def stack_adam(per_member: Sequence[torch.optim.Adam], stacked: torch.optim.Adam,
               model: StackedMLP) -> None:
    """Put the K members' Adam moments into ``stacked`` (empty states stay empty)."""
    params = model.parameters()
    member_params = [list(m.parameters()) for m in model.members]
    states = [[o.state.get(p, {}) for p in mp] for o, mp in zip(per_member, member_params,
                                                                 strict=True)]
    stacked.state.clear()
    for i, p in enumerate(params):
        per = [s[i] for s in states]
        if not all(per):
            continue
        st: dict[str, torch.Tensor] = {"step": per[0]["step"].clone()}
        for key in _ADAM_KEYS:
            if key in per[0]:
                st[key] = torch.stack([_to_stacked(s[key], i % 2 == 0) for s in per])
        stacked.state[p] = st


@torch.no_grad()
def unstack_adam(stacked: torch.optim.Adam, per_member: Sequence[torch.optim.Adam],
                 model: StackedMLP) -> None:
    """Inverse of :func:`stack_adam`: write the stacked moments back per member."""
    params = model.parameters()
    member_params = [list(m.parameters()) for m in model.members]
    for i, p in enumerate(params):
        st = stacked.state.get(p)
        if not st:
            continue
        for k, (o, mp) in enumerate(zip(per_member, member_params, strict=True)):
            out: dict[str, torch.Tensor] = {"step": st["step"].clone()}
            for key in _ADAM_KEYS:
                if key in st:
                    v = st[key][k]
                    out[key] = (v.T if i % 2 == 0 else v[0]).clone()
            o.state[mp[i]] = out


class BatchedEngine:
    """Trains a stacked copy of the members, one batched step for all K (see RewardTrainer)."""

    def __init__(self, members: Sequence[nn.Module], optimizers: Sequence[torch.optim.Adam],
                 lr: float) -> None:
        self.model = StackedMLP(members)
        self.optimizers = list(optimizers)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        stack_adam(self.optimizers, self.opt, self.model)

    def step(self, obs: torch.Tensor, acts: torch.Tensor, mu: torch.Tensor, *, l2: float,
             eps: float, max_grad_norm: float, per_forward: int, autocast: bool) -> None:
        """One optimiser step of every member.

        ``obs`` is ``(2Kb, T, ...)`` as the trainer's pair source returns it for K member
        batches of b pairs laid end to end.
        """
        from prefrl.reward.loss import misclick_bt_loss

        k = self.model.k
        b = len(mu) // k
        kb = k * b
        lo, ro = obs[:kb].unflatten(0, (k, b)), obs[kb:].unflatten(0, (k, b))
        la, ra = acts[:kb].unflatten(0, (k, b)), acts[kb:].unflatten(0, (k, b))
        mu_k = mu.view(k, b)
        params = self.model.parameters()
        self.opt.zero_grad(set_to_none=True)
        step = max(1, per_forward)
        for i in range(0, b, step):
            j = min(b, i + step)
            o = torch.cat([lo[:, i:j], ro[:, i:j]], 1)  # (K, 2m, T, ...)
            a = torch.cat([la[:, i:j], ra[:, i:j]], 1)
            m2, t = o.shape[1], o.shape[2]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                r = self.model.per_member(o.flatten(1, 2), a.flatten(1, 2))
            ret = r.float().reshape(k, m2, t).sum(2)
            m = j - i
            loss = misclick_bt_loss(ret[:, :m], ret[:, m:], mu_k[:, i:j], eps,
                                    reduction="none").mean(1).sum() * (m / b)
            if l2 > 0 and i == 0:
                loss = loss + l2 * sum((p * p).sum() for p in params)
            loss.backward()
        self.model.clip_grad_norm_(max_grad_norm)
        self.opt.step()

    @torch.no_grad()
    def clip_returns(self, obs: torch.Tensor, acts: torch.Tensor, autocast: bool) -> torch.Tensor:
        """Raw returns ``(K, B)`` of clips ``obs (B, T, ...)`` under every member."""
        bsz, t = obs.shape[:2]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            r = self.model(obs.flatten(0, 1), acts.flatten(0, 1))
        return r.float().reshape(self.model.k, bsz, t).sum(2)

    def snapshot(self) -> list[torch.Tensor]:
        """Parameters to come back to."""
        return self.model.snapshot()

    def restore(self, snap: list[torch.Tensor]) -> None:
        """Back to a :meth:`snapshot`."""
        self.model.restore(snap)

    def finish(self) -> None:
        """Write weights and Adam moments back into the members and their optimisers."""
        self.model.write_members()
        unstack_adam(self.opt, self.optimizers, self.model)

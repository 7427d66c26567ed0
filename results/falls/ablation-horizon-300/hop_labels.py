"""Unhealthy share of the clips a Hopper run labelled, and the answers between healthy and fallen clips."""
import sys
import numpy as np
from prefrl.store import LabelStore
for run in sys.argv[1:]:
    s = LabelStore(f"{run}/labels.sqlite", create=False)
    ds = s.training_set()
    def unh(o):  # (n, T, obs): torso z = obs[0], angle = obs[1]
        return ((o[..., 0] < 0.7) | (np.abs(o[..., 1]) > 0.2)).mean(-1)
    ul, ur = unh(ds.left_obs), unh(ds.right_obs)
    u = np.concatenate([ul, ur])
    n = len(ul)
    print(run, "labels", n)
    print("  clip unhealthy share: hist", np.histogram(u, bins=[0, .01, .25, .5, .75, .99, 1.0])[0])
    d = ul - ur
    m = np.abs(d) > 0.25
    # mu: preference for left (1 = left better)
    mu = ds.mu
    pref_healthier = np.where(d[m] < 0, 1 - mu[m], mu[m])  # mu = P(right better)
    print(f"  pairs differing by >0.25 in unhealthy share: {m.sum()}; mean pref for the healthier: {pref_healthier.mean():.2f}")
    thirds = np.array_split(np.arange(n), 3)
    for i, t in enumerate(thirds):
        print(f"  labels third {i}: mean clip unhealthy {np.concatenate([ul[t], ur[t]]).mean():.2f}, mean angle {np.abs(np.concatenate([ds.left_obs[t][...,1], ds.right_obs[t][...,1]])).mean():.2f}, share fully unhealthy {(np.concatenate([ul[t], ur[t]])>0.99).mean():.2f}")

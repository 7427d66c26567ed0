"""Unhealthy share (|pole angle| > 0.2, obs[1]) of an InvertedPendulum run's labelled clips."""
import sys
import numpy as np
from prefrl.store import LabelStore
for run in sys.argv[1:]:
    ds = LabelStore(f"{run}/labels.sqlite", create=False).training_set()
    unh = lambda o: (np.abs(o[..., 1]) > 0.2).mean(-1)
    ul, ur = unh(ds.left_obs), unh(ds.right_obs)
    u = np.concatenate([ul, ur]); d = ul - ur; m = np.abs(d) > 0.25
    pref = np.where(d[m] < 0, 1 - ds.mu[m], ds.mu[m])
    eq = np.isclose(ds.mu, 0.5).mean()
    print(run, len(ul), "labels; clip unhealthy hist", np.histogram(u, bins=[0, .01, .25, .5, .75, .99, 1.0])[0],
          f"; pairs differing >0.25: {m.sum()}, pref healthier {pref.mean():.2f}; equal answers {eq:.2f}")

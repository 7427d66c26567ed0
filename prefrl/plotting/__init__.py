"""Plots of results, regenerated from the metrics CSVs alone."""

from prefrl.plotting.curves import load_curve, plot_learning_curves

__all__ = ["load_curve", "plot_learning_curves"]

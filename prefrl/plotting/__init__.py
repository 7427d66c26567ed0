"""Plots of results, regenerated from the metrics CSVs and result/eval JSONs alone."""

from prefrl.plotting.curves import load_curve, plot_learning_curves
from prefrl.plotting.load import CellData, load_experiment, random_returns
from prefrl.plotting.report import make_report, plot_main

__all__ = ["CellData", "load_curve", "load_experiment", "make_report", "plot_learning_curves",
           "plot_main", "random_returns"]

"""Result tables and figures, built from exactly the metrics files they are given (no folder is scanned).

One module per job:

* :mod:`~hico_bench.results.collect`: read evaluation metrics files and pretraining logs, with the run identity
  of each, into long rows (one per metric).
* :mod:`~hico_bench.results.groups`: the seeds of one run configuration grouped into cells; display names and row
  order.
* :mod:`~hico_bench.results.cells`: the cells (measured, paper, difference), their statistics (mean, sample std,
  Student-t 95% interval, Welch's comparison) and the CSV / Markdown rendering of a table.
* :mod:`~hico_bench.results.reference`: the paper's numbers and the one rule matching a measurement to them.
* :mod:`~hico_bench.results.tables`: the tables and :func:`~hico_bench.results.tables.build_tables`.
* :mod:`~hico_bench.results.plots`: the figures and :func:`~hico_bench.results.plots.make_plots`.

This module itself imports nothing, so that the workflow reads the output names below without loading pandas,
scipy or matplotlib.
"""

#: The tables :func:`hico_bench.results.tables.build_tables` writes (``<name>.csv``, ``.md``, ``.sources.csv``).
TABLE_NAMES = ("recognition", "retrieval", "ablation", "trimmed_vs_untrimmed", "localization")

#: The figures :func:`hico_bench.results.plots.make_plots` writes (``<name>.png``).
PLOT_NAMES = ("loss_curves", "delta_max", "ablation_bars", "retrieval_recall")

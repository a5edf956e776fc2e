"""perfgraph models: the paper's GNN, stronger GNNs, and Halide- and TVM-style baselines.

One module per model (:mod:`models.gcn`, :mod:`models.gine`, :mod:`models.gatv2`,
:mod:`models.adams2019`, :mod:`models.packsum_xgb`, :mod:`models.pooled_xgb`); the split,
loader, metrics, trainer and evaluator are shared. Command line: ``perfgraph <stage>`` (``python -m models``).
"""

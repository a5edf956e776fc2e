"""perfgraph models: the paper's GNN, stronger GNNs, and each compiler's own cost model as a baseline.

Shared by both backends: the GNNs (:mod:`models.gcn`, :mod:`models.gine`, :mod:`models.gatv2`),
the program tensors (:mod:`models.data`), the training loop (:mod:`models.train`), the
scoring (:mod:`models.evaluate`, :mod:`models.metrics`), the split and the search. Each
backend has its inputs and its compiler's own model: :mod:`models.halide` (``inputs``,
``adams2019``: Halide's model; ``packsum_xgb``, ``pooled_xgb``: XGBoost baselines on
Halide's features) and :mod:`models.tvm` (``inputs``, ``xgbmodel``: TVM's model; ``stages``
and ``cli``: its train / evaluate / summarize). Command line: ``perfgraph <stage>``.
"""

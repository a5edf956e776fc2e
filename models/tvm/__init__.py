"""Cost models on the TVM dataset: TVM's own XGBModel and the GNNs, scored alike."""

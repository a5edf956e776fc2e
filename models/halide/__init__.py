"""Halide's side of the models: its inputs, its own cost model (Adams2019) and the baselines on its features."""

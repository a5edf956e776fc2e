"""Halide's graph (the autoscheduler's DAG dump) and the Adams2019 features."""

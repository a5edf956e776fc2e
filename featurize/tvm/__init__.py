"""TVM's graph (TIR blocks) and MetaSchedule's per-store features."""

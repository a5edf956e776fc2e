"""The Halide side of the dataset stages: ops, random generator, zoo, program entries, autoschedulers, sampler mix, sampling and compiling."""

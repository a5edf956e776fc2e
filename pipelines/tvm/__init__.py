"""The TVM side of the dataset stages: tensor-program ops, random generator and zoo, MetaSchedule sampling, timing adapter, command line."""

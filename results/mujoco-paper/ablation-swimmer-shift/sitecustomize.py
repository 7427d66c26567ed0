import swim_probe_envs  # noqa: F401  (registers SwimmerShift-v0 in every process)

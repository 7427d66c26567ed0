"""Stable-Baselines3 integration: the learned-reward VecEnv wrapper and the training callback."""

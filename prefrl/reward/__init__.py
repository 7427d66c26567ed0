"""Reward learning: networks, ensemble, misclick-aware loss, trainer and diagnostics."""

from prefrl.reward.ensemble import RewardEnsemble, default_device
from prefrl.reward.loss import misclick_bt_loss
from prefrl.reward.metrics import RewardAgreement, calibration, return_correlation
from prefrl.reward.nets import MLPRewardNet, RewardNet, make_reward_net
from prefrl.reward.trainer import RewardTrainer, TrainerConfig, TrainStats

__all__ = [
    "MLPRewardNet", "RewardAgreement", "RewardEnsemble", "RewardNet", "RewardTrainer",
    "TrainStats", "TrainerConfig", "calibration", "default_device", "make_reward_net",
    "misclick_bt_loss", "return_correlation",
]

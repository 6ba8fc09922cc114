"""BatchPPO."""

from agents_gin.algorithms.ppo.objectives import ClippedSurrogate, KLPenalty
from agents_gin.algorithms.ppo.ppo import PPO

__all__ = ['PPO', 'ClippedSurrogate', 'KLPenalty']

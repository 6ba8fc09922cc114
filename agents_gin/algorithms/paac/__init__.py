"""PAAC: synchronous parallel advantage actor-critic."""

from agents_gin.algorithms.paac.paac import PAAC, n_step_returns

__all__ = ['PAAC', 'n_step_returns']

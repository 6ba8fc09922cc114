"""Which seed each environment of a batch takes at its next reset."""

import numpy as np


class EnvSeeds:
    """Seeds environment i with seed + i at its first reset; later resets continue its RNG.

    After `reseed`, every environment takes seed + i again at its next reset.
    The environments of a worker rebuilt at the batch's r-th restart take
    seed + i + N * r, a seed none of the N environments has used before.
    Without a seed (None) every reset is unseeded.
    """

    def __init__(self, seed, num_envs):
        self.seed = seed
        self._num_envs = num_envs
        self._seeded = np.zeros(num_envs, bool)

    def reseed(self, seed):
        """Seeds environment i again with seed + i at its next reset."""
        self.seed = seed
        self._seeded[:] = False

    def take(self, indices):
        """The seeds for a reset of `indices`: None for those seeded already."""
        if self.seed is None:
            return [None] * len(indices)
        seeds = [None if self._seeded[i] else self.seed + int(i) for i in indices]
        self._seeded[indices] = True
        return seeds

    def after_restart(self, indices, restarts):
        """The seeds for the envs of a worker rebuilt at restart number `restarts`."""
        if self.seed is None:
            return None
        return [self.seed + i + self._num_envs * restarts for i in indices]

    def mark_seeded(self, indices):
        """Records that `indices` were reset with a seed of their own already."""
        self._seeded[indices] = True

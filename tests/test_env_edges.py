"""Worker and batch env edges: partial-reset errors, env exceptions vs restarts, hung orphans."""

import functools

import numpy as np
import pytest

from agents_gin.envs import BatchEnv, EnvWorkerError, FaultyEnv, MockEnv


def test_non_finite_observation_at_a_partial_reset_names_the_batch_index():
    class NanResetEnv(MockEnv):
        def reset(self, *, seed=None, options=None):
            observ, info = super().reset(seed=seed, options=options)
            return observ * np.nan, info

    batch = BatchEnv([MockEnv, MockEnv, NanResetEnv])
    with pytest.raises(ValueError, match=r'Environment 2 \(NanResetEnv\) returned a non-finite '
                                         r'observation'):
        batch.reset([0, 2])


def test_an_exception_inside_an_env_is_raised_not_restarted_away():
    batch = BatchEnv([MockEnv, functools.partial(FaultyEnv, at=2)], num_workers=2,
                     max_restarts=3)
    try:
        batch.reset()
        batch.step(np.zeros((2, 1), np.float32))
        with pytest.raises(EnvWorkerError, match='ValueError: injected failure in step') as error:
            batch.step(np.zeros((2, 1), np.float32))
        assert type(error.value) is EnvWorkerError and batch.restarts == 0
    finally:
        batch.close()

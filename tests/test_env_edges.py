"""Worker and batch env edges: partial-reset errors, env exceptions vs restarts, hung orphans."""

import functools
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from agents_gin.envs import BatchEnv, EnvWorkerError, FaultyEnv, MockEnv


def _alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as stat:
            return stat.read().split(')')[-1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


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


def test_no_orphans_when_the_parent_is_killed_while_a_worker_hangs():
    # An idle child leaves on the pipe's EOF; one stuck in a step (ignoring
    # SIGTERM) reads nothing, so only PR_SET_PDEATHSIG ends it.
    script = textwrap.dedent("""
        import functools, time
        import numpy as np
        from agents_gin.envs import BatchEnv, FaultyEnv
        batch = BatchEnv([functools.partial(FaultyEnv, at=1, mode='hang_hard')], num_workers=1)
        batch.reset()
        batch._workers[0].send('step', np.zeros((1, 1), np.float32))
        time.sleep(0.3)  # Let it enter the hang.
        print(batch._workers[0].pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    try:
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        assert not _alive(pid)
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)

"""The worker restart policy with real processes that really die: idle, resetting, stepping."""

import functools
import logging
import os
import signal
import time

import gin
import numpy as np
import pytest

from agents_gin.envs import (
    BatchEnv,
    EnvWorker,
    EnvWorkerCrashed,
    EnvWorkerError,
    EnvWorkerTimeout,
    FaultyEnv,
    MockEnv,
    make_env,
)
from agents_gin.envs.errors import RestartLimitExceeded
from agents_gin.envs.testing import CRASHING_PENDULUM_ID


def mock(tag):
    return functools.partial(MockEnv, lengths=(100,), tag=tag)


def faulty(**kwargs):
    return functools.partial(FaultyEnv, **kwargs)


def zeros(batch):
    return np.zeros((batch.num_envs, 1), np.float32)


def kill_and_wait(pid):
    """SIGKILLs a worker and waits until it is gone, so the next call finds it dead."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f'/proc/{pid}/stat') as stat:
                if stat.read().split(')')[-1].split()[0] == 'Z':
                    return
        except FileNotFoundError:
            return
        time.sleep(0.02)
    raise AssertionError(f'worker {pid} still alive after SIGKILL')


def assert_truncated_at(result, envs, previous):
    """The restarted envs return their previous observation, reward 0, truncated."""
    observ, reward, terminated, truncated, infos = result
    np.testing.assert_array_equal(observ[envs], previous[envs])
    np.testing.assert_array_equal(reward[envs], np.zeros(len(envs)))
    assert not terminated[envs].any() and truncated[envs].all()
    assert all(infos[i] == {'worker_restarted': True} for i in envs)


@pytest.mark.parametrize('mode, described', [
    ('kill', 'killed by SIGKILL'), ('exit', 'exited with code 3')])
def test_death_during_step_ends_the_group_at_its_last_real_observation(mode, described,
                                                                          caplog):
    # Groups: worker 0 hosts envs 0 and 1 (env 1 dies at its third step), worker 1 env 2.
    batch = BatchEnv([mock(1), faulty(at=3, mode=mode), mock(3)], num_workers=2,
                     max_restarts=3, seed=0)
    try:
        batch.reset()
        batch.step(zeros(batch))
        previous = batch.step(zeros(batch))[0]
        np.testing.assert_array_equal(previous, [[2, 1], [2, 0], [2, 3]])
        pid = batch._workers[0].pid
        with caplog.at_level(logging.WARNING):
            result = batch.step(zeros(batch))
        assert_truncated_at(result, [0, 1], previous)
        observ, reward, _, truncated, _ = result
        np.testing.assert_array_equal(observ[2], [3, 3])  # The healthy worker stepped on.
        assert reward[2] == 4 and not truncated[2]
        assert batch.restarts == 1 and batch._workers[0].pid != pid
        assert (f'Environment worker 0 (pid {pid}, envs [0, 1]) died during step: {described}'
                in caplog.text)
        assert 'restart 1 of 3' in caplog.text
        # The caller resets the truncated envs, and they step on normally.
        np.testing.assert_array_equal(batch.reset([0, 1]), [[0, 1], [0, 0]])
        observ, reward, _, truncated, _ = batch.step(zeros(batch))
        np.testing.assert_array_equal(observ, [[1, 1], [1, 0], [4, 3]])
        np.testing.assert_array_equal(reward, [2, 1, 4])
        assert not truncated.any()
    finally:
        batch.close()


def test_death_while_idle_is_restarted_at_the_next_step():
    batch = BatchEnv([mock(i) for i in range(4)], num_workers=2, max_restarts=1)
    try:
        batch.reset()
        previous = batch.step(zeros(batch))[0]
        kill_and_wait(batch._workers[1].pid)
        result = batch.step(zeros(batch))
        assert_truncated_at(result, [2, 3], previous)
        np.testing.assert_array_equal(result[0][:2], [[2, 0], [2, 1]])
        assert not result[3][:2].any() and batch.restarts == 1
        batch.reset([2, 3])
        observ, _, _, truncated, _ = batch.step(zeros(batch))
        np.testing.assert_array_equal(observ, [[3, 0], [3, 1], [1, 2], [1, 3]])
        assert not truncated.any()
    finally:
        batch.close()


def test_death_while_idle_is_restarted_at_the_next_reset_which_runs_again():
    batch = BatchEnv([mock(i) for i in range(4)], num_workers=2, max_restarts=1)
    try:
        batch.reset()
        batch.step(zeros(batch))
        kill_and_wait(batch._workers[0].pid)
        np.testing.assert_array_equal(batch.reset(), [[0, 0], [0, 1], [0, 2], [0, 3]])
        assert batch.restarts == 1
        observ, _, _, truncated, _ = batch.step(zeros(batch))
        assert not truncated.any()  # Every env was reset: no episode was cut short.
        np.testing.assert_array_equal(observ[:, 0], [1, 1, 1, 1])
    finally:
        batch.close()


def test_death_before_a_call_is_retried_and_the_next_step_truncates():
    batch = BatchEnv([mock(i) for i in range(4)], num_workers=2, max_restarts=1)
    try:
        batch.reset()
        previous = batch.step(zeros(batch))[0]
        kill_and_wait(batch._workers[0].pid)
        assert batch.get_attr('tag') == [0.0, 1.0, 2.0, 3.0]
        assert batch.restarts == 1
        assert_truncated_at(batch.step(zeros(batch)), [0, 1], previous)
    finally:
        batch.close()


def test_death_during_reset_is_retried_on_the_rebuilt_worker(tmp_path):
    once = str(tmp_path / 'crashed')
    batch = BatchEnv([mock(1), faulty(fail_on='reset', mode='kill', once=once), mock(3)],
                     num_workers=2, max_restarts=1, seed=0)
    try:
        observ = batch.reset()
        assert os.path.exists(once) and batch.restarts == 1
        np.testing.assert_array_equal(observ, [[0, 1], [0, 0], [0, 3]])
        observ, _, _, truncated, _ = batch.step(zeros(batch))
        assert not truncated.any()
        np.testing.assert_array_equal(observ[:, 0], [1, 1, 1])
    finally:
        batch.close()


def test_death_during_a_partial_reset_truncates_the_other_envs_of_the_worker(tmp_path):
    # Env 1 dies at its second reset; env 0, on the same worker, was mid-episode.
    once = str(tmp_path / 'crashed')
    batch = BatchEnv([mock(1), faulty(fail_on='reset', reset_at=2, mode='exit', once=once),
                      mock(3)], num_workers=2, max_restarts=2, seed=0)
    try:
        batch.reset()
        batch.step(zeros(batch))
        previous = batch.step(zeros(batch))[0]
        np.testing.assert_array_equal(batch.reset([1]), [[0, 0]])
        assert batch.restarts == 1
        result = batch.step(zeros(batch))
        assert_truncated_at(result, [0], previous)
        np.testing.assert_array_equal(result[0][1:], [[1, 0], [3, 3]])
        assert not result[3][1:].any()
    finally:
        batch.close()


def test_restart_limit_raises_one_error_naming_everything():
    batch = BatchEnv([mock(0), faulty(at=1, mode='exit')], num_workers=2, max_restarts=1)
    try:
        batch.reset()
        batch.step(zeros(batch))  # Worker 1 dies and is rebuilt (restart 1 of 1).
        batch.reset([1])
        pid = batch._workers[1].pid
        with pytest.raises(RestartLimitExceeded) as error:
            batch.step(zeros(batch))  # The rebuilt env dies at its first step again.
        assert str(error.value) == (
            'environment worker died: exited with code 3; the restart limit was reached '
            f'(1 worker restarts so far, BatchEnv.max_restarts = 1) [worker 1, envs [1], '
            f'pid {pid}, during step]')
        assert isinstance(error.value, EnvWorkerError) and error.value.exitcode == 3
        assert isinstance(error.value.cause, EnvWorkerCrashed)
        assert batch.last_error is error.value and batch.restarts == 1
    finally:
        batch.close()


def test_without_restarts_the_death_is_raised_and_kept_as_last_error():
    batch = BatchEnv([mock(0), faulty(at=1, mode='kill')], num_workers=2)
    try:
        batch.reset()
        with pytest.raises(EnvWorkerCrashed, match=r'killed by SIGKILL .*\[worker 1, envs \[1\]'):
            batch.step(zeros(batch))
        assert batch.last_error is not None and batch.restarts == 0
        assert isinstance(batch.last_error, EnvWorkerCrashed)
    finally:
        batch.close()


def test_last_error_holds_the_latest_failure_only():
    batch = BatchEnv([mock(0), mock(1)])
    batch.reset()
    with pytest.raises(ValueError, match='not finite') as error:
        batch.step(np.full((2, 1), np.nan, np.float32))
    assert batch.last_error is error.value
    batch.step(zeros(batch))
    assert batch.last_error is None


def test_fatal_signal_brings_the_childs_python_stack():
    gin.parse_config(f"""
        make_env.env_id = '{CRASHING_PENDULUM_ID}'
        make_env.env_kwargs = {{'crash_probability': 1.0, 'mode': 'segv'}}
    """)
    batch = BatchEnv([make_env], num_workers=1)
    try:
        batch.reset()
        with pytest.raises(EnvWorkerCrashed) as error:
            batch.step(zeros(batch))
        message = str(error.value)
        assert 'environment worker died: killed by SIGSEGV [worker 0, envs [0]' in message
        assert '--- traceback in the worker ---\nFatal Python error: Segmentation fault' in message
        assert 'testing.py' in message and 'in _maybe_crash' in message
    finally:
        batch.close()


def test_hung_worker_is_restarted_and_its_stack_shows_where_it_hung(tmp_path, caplog):
    gin.bind_parameter('EnvWorker.call_timeout', 1.0)
    gin.bind_parameter('EnvWorker.close_timeout', 0.5)
    once = str(tmp_path / 'hung')
    batch = BatchEnv([mock(0), faulty(at=2, mode='hang', once=once)], num_workers=2,
                     max_restarts=1)
    try:
        batch.reset()
        previous = batch.step(zeros(batch))[0]
        with caplog.at_level(logging.WARNING):
            result = batch.step(zeros(batch))
        assert_truncated_at(result, [1], previous)
        assert batch.restarts == 1
        assert 'did not answer within 1 s during step' in caplog.text
    finally:
        batch.close()
    # The stack dump itself, on a worker of its own.
    worker = EnvWorker([faulty(at=1, mode='hang')], call_timeout=0.5, close_timeout=0.5)
    try:
        worker.request('reset', ([0], None, None))
        with pytest.raises(EnvWorkerTimeout) as error:
            worker.request('step', np.zeros((1, 1), np.float32))
        assert 'traceback in the worker' in str(error.value)
        assert 'in _fail' in str(error.value) and 'in step' in str(error.value)
    finally:
        worker.close()


def test_crashing_pendulum_survives_many_seeded_crashes():
    gin.parse_config(f"""
        make_env.env_id = '{CRASHING_PENDULUM_ID}'
        make_env.env_kwargs = {{'crash_probability': 0.01, 'reset_crash_probability': 0.05,
                               'mode': 'exit', 'seed': 1}}
    """)
    batch = BatchEnv([make_env] * 4, num_workers=2, max_restarts=100, seed=0)
    try:
        observ = batch.reset()
        truncations = 0
        for _ in range(150):
            previous = observ
            observ, reward, terminated, truncated, infos = batch.step(
                np.full((4, 1), 0.5, np.float32))
            restarted = [i for i, info in enumerate(infos) if info.get('worker_restarted')]
            if restarted:
                assert_truncated_at((observ, reward, terminated, truncated, infos),
                                    restarted, previous)
                truncations += 1
            done = np.flatnonzero(terminated | truncated)
            if len(done):
                observ = observ.copy()
                observ[done] = batch.reset(done)
        assert batch.restarts > 0 and truncations > 0
        assert truncations <= batch.restarts  # A reset's restart truncates nothing.
    finally:
        batch.close()


def test_crashing_pendulum_outside_a_worker_is_plain_pendulum():
    import gymnasium as gym
    crashing = gym.make(CRASHING_PENDULUM_ID, crash_probability=1.0,
                        reset_crash_probability=1.0, mode='kill')
    plain = gym.make('Pendulum-v1')
    observ, _ = crashing.reset(seed=3)
    np.testing.assert_array_equal(observ, plain.reset(seed=3)[0])
    for action in np.linspace(-2, 2, 20, dtype=np.float32):
        got = crashing.step([action])
        want = plain.step([action])
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1:4] == want[1:4]


def test_last_error_survives_the_crossing_into_a_graph():
    import tensorflow as tf

    from agents_gin.envs.in_graph import InGraphBatchEnv
    batch = BatchEnv([mock(0), faulty(at=1, mode='exit')], num_workers=2, max_restarts=0)
    try:
        env = InGraphBatchEnv(batch)
        env.reset()
        step = tf.function(lambda: env.step(tf.zeros((2, 1))))
        with pytest.raises(tf.errors.OpError):
            step()
        # What the loop re-raises instead of TensorFlow's wrapped error.
        assert isinstance(batch.last_error, EnvWorkerCrashed)
        assert str(batch.last_error).startswith(
            'environment worker died: exited with code 3 [worker 1, envs [1], pid ')
    finally:
        batch.close()

"""Worker processes: gin in the child, and every fault injected for real."""

import functools
import os
import signal
import subprocess
import sys
import textwrap
import time
import types

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
    GinTaggedEnv,
    MockEnv,
)

ZERO = np.zeros((1, 1), np.float32)


def faulty(**kwargs):
    return functools.partial(FaultyEnv, **kwargs)


@pytest.mark.parametrize('start_method', ['forkserver', 'spawn'])
def test_gin_bindings_reach_worker_environments(start_method):
    gin.parse_config('GinTaggedEnv.tag = 7.0')
    worker = EnvWorker([GinTaggedEnv, GinTaggedEnv], start_method=start_method)
    try:
        observ, infos = worker.request('reset', ([0, 1], None, None))
        np.testing.assert_array_equal(worker.read_observ()[:, 1], [7.0, 7.0])
        _, reward, *_ = worker.request('step', np.zeros((2, 1), np.float32))
        np.testing.assert_array_equal(reward, [8.0, 8.0])
    finally:
        worker.close()


def test_group_answers_in_one_message_through_shared_memory():
    worker = EnvWorker([functools.partial(MockEnv, tag=i) for i in range(3)])
    try:
        assert worker.uses_shared_memory
        worker.request('reset', ([0, 1, 2], None, None))
        observ, reward, terminated, truncated, infos = worker.request(
            'step', np.zeros((3, 1), np.float32))
        assert observ is None  # It came through shared memory.
        np.testing.assert_array_equal(worker.read_observ(), [[1, 0], [1, 1], [1, 2]])
        np.testing.assert_array_equal(reward, [1, 2, 3])
        assert worker.request('getattr', ('tag', [2])) == [2.0]
    finally:
        worker.close()


def test_exception_in_constructor_names_worker_and_traceback():
    with pytest.raises(EnvWorkerError) as error:
        EnvWorker([faulty(fail_on='construct')], worker_index=3, env_indices=[6])
    message = str(error.value)
    assert 'ValueError: injected failure in construct' in message
    assert '[worker 3, envs [6], pid ' in message and 'during construct]' in message
    assert 'traceback in the worker' in message and 'testing.py' in message
    assert error.value.remote_type == 'ValueError'


def test_exception_in_step_is_typed_and_worker_stays_usable_for_calls():
    batch = BatchEnv([MockEnv, faulty(at=2)], num_workers=2)
    try:
        batch.reset()
        batch.step(np.zeros((2, 1), np.float32))
        with pytest.raises(EnvWorkerError) as error:
            batch.step(np.zeros((2, 1), np.float32))
        assert error.value.worker_index == 1 and error.value.env_indices == (1,)
        assert error.value.command == 'step'
        assert 'ValueError: injected failure in step' in str(error.value)
        # The failed call's stale reply from worker 0 is dropped by its sequence number.
        assert batch.get_attr('episode_steps') == [[2], [1]]
    finally:
        batch.close()


def test_exception_that_cannot_be_pickled_still_arrives():
    worker = EnvWorker([faulty(fail_on='reset', mode='raise_custom')])
    try:
        with pytest.raises(EnvWorkerError, match=r'TwoArgumentError: injected \(code 42\)'):
            worker.request('reset', ([0], None, None))
    finally:
        worker.close()


@pytest.mark.parametrize('mode, described', [
    ('kill', 'killed by SIGKILL'), ('exit', 'exited with code 3')])
def test_death_during_step_is_seen_at_once(mode, described):
    worker = EnvWorker([faulty(at=1, mode=mode)], worker_index=2, call_timeout=60)
    worker.request('reset', ([0], None, None))
    start = time.monotonic()
    with pytest.raises(EnvWorkerCrashed) as error:
        worker.request('step', ZERO)
    assert time.monotonic() - start < 5  # Not the 60 s timeout: the sentinel fired.
    assert described in str(error.value)
    assert f'pid {worker.pid}' in str(error.value) and 'during step' in str(error.value)
    with pytest.raises(EnvWorkerError, match='not used again'):
        worker.request('step', ZERO)


def test_worker_killed_while_idle_is_reported_on_next_call():
    worker = EnvWorker([MockEnv])
    os.kill(worker.pid, signal.SIGKILL)
    time.sleep(0.2)
    with pytest.raises(EnvWorkerCrashed, match='killed by SIGKILL'):
        worker.request('reset', ([0], None, None))


def test_timeout_stops_the_worker_and_it_is_never_reused():
    worker = EnvWorker([faulty(at=1, mode='hang')], call_timeout=0.5, close_timeout=5)
    worker.request('reset', ([0], None, None))
    start = time.monotonic()
    with pytest.raises(EnvWorkerTimeout, match='did not answer within 0.5 s'):
        worker.request('step', ZERO)
    # SIGTERM at once: a hung child is not asked to close (that would wait 5 s).
    assert time.monotonic() - start < 3
    assert worker.exitcode == -signal.SIGTERM  # Stopped at once, not asked to close.
    with pytest.raises(EnvWorkerError, match='not used again'):
        worker.request('reset', ([0], None, None))


def test_close_is_bounded_for_a_worker_ignoring_sigterm():
    worker = EnvWorker([faulty(at=1, mode='hang_hard')], close_timeout=0.5)
    worker.request('reset', ([0], None, None))
    worker.send('step', ZERO)
    time.sleep(0.3)  # Let it enter the hang and ignore SIGTERM.
    start = time.monotonic()
    worker.close()
    assert time.monotonic() - start < 3  # close (0.5 s) + SIGTERM (0.5 s) + SIGKILL.
    assert worker.exitcode == -signal.SIGKILL
    worker.close()  # Idempotent.


def test_close_twice_and_after_failure():
    batch = BatchEnv([MockEnv, MockEnv], num_workers=2)
    workers = list(batch._workers)
    batch.close()
    batch.close()
    assert [worker.exitcode for worker in workers] == [0, 0]  # Asked to close, and did.
    worker = EnvWorker([faulty(at=1, mode='exit')])
    worker.request('reset', ([0], None, None))
    with pytest.raises(EnvWorkerCrashed):
        worker.request('step', ZERO)
    worker.close()
    worker.close()
    assert worker.exitcode == 3  # The crash's own status, not overwritten by close.


def test_gin_import_that_fails_in_the_worker_stops_its_start_naming_the_module():
    # Importable in this process only: it exists in sys.modules, not on disk.
    sys.modules['parent_only_envs'] = types.ModuleType('parent_only_envs')
    try:
        gin.parse_config('import parent_only_envs')
        with pytest.raises(EnvWorkerError) as error:
            EnvWorker([MockEnv], worker_index=1, env_indices=[4])
    finally:
        del sys.modules['parent_only_envs']
    message = str(error.value)
    assert message.startswith(
        "ImportError: The gin config's `import parent_only_envs` failed in the environment "
        'worker process (it may be importable only in the parent): ModuleNotFoundError: '
        "No module named 'parent_only_envs' [worker 1, envs [4], pid ")
    assert 'during construct]' in message and 'traceback in the worker' in message


def test_close_stops_hung_workers_in_parallel_within_one_bound():
    gin.bind_parameter('EnvWorker.close_timeout', 0.5)
    batch = BatchEnv([faulty(at=1, mode='hang_hard')] * 4, num_workers=4)
    workers = list(batch._workers)
    batch.reset()
    for worker in workers:
        worker.send('step', ZERO)
    time.sleep(0.5)  # Let them enter the hang, ignoring SIGTERM.
    start = time.monotonic()
    batch.close()
    elapsed = time.monotonic() - start
    # One worker's bound is ask (0.5 s) + SIGTERM (0.5 s) + SIGKILL; one after
    # another, four would take at least 4 s.
    assert elapsed < 2 * (2 * 0.5), elapsed
    assert [worker.exitcode for worker in workers] == [-signal.SIGKILL] * 4
    batch.close()


def test_no_orphans_when_the_parent_is_killed(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {os.getcwd()!r})
        from agents_gin.envs import BatchEnv, MockEnv
        batch = BatchEnv([MockEnv] * 4, num_workers=2)
        print(' '.join(str(w.pid) for w in batch._workers), flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, text=True)
    pids = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(pids) == 2 and all(os.path.exists(f'/proc/{pid}') for pid in pids)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as stat:
            return stat.read().split(')')[-1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def test_workers_stay_free_of_tensorflow_under_a_full_config():
    from agents_gin import run_setup
    run_setup.parse_config(['configs/ppo_halfcheetah.gin'], [], ['configs'])
    text = gin.config_str()
    assert 'import agents_gin.algorithms.ppo' in text and ' as ' in text
    worker = EnvWorker([GinTaggedEnv])
    try:
        with open(f'/proc/{worker.pid}/maps') as maps:
            assert 'tensorflow' not in maps.read()
    finally:
        worker.close()


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

"""Real training processes killed as a user's machine kills them: logs stay consistent.

Each test runs `python -m launch.train` on a tiny Pendulum config and sends real
signals: SIGKILL at random, seeded moments (mid-chunk, mid-evaluation,
mid-save, mid-write of metrics.jsonl), then SIGTERM twice inside a long graph
call; or its environment workers die at random steps. Afterwards
metrics.jsonl, TensorBoard's events and the checkpoints must agree: strictly
increasing steps, no duplicates, nothing newer than the checkpoint a resume
starts from.
"""

import glob
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

from agents_gin.run_log import SLOW_WRITE_ENV

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 4 envs x 25 steps = 100 env steps per chunk; an evaluation and a checkpoint
# every 4 chunks, an update every 800 steps.
TINY = ['train.num_envs = 4', 'train.eval_episodes = 2', 'PPO.update_every = 4',
        'PPO.update_epochs = 1', 'Loop.chunk_steps = 25', 'Loop.eval_every = 400',
        'FeedForwardGaussian.policy_layers = (16,)', 'FeedForwardGaussian.value_layers = (16,)']


def launch(logdir, params, extra_env=None, gin_file='configs/ppo_pendulum.gin'):
    """Starts launch.train as a real process (run 'run' under `logdir`)."""
    command = [sys.executable, '-m', 'launch.train', f'--logdir={logdir}', '--timestamp=run']
    if gin_file:
        command.append(f'--gin_file={gin_file}')
    command += [f'--gin_param={param}' for param in params]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', **(extra_env or {}))
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_for_line(process, prefix, seen):
    """Reads output lines until one starts with `prefix`; all lines go to `seen`."""
    for line in process.stdout:
        seen.append(line)
        if line.startswith(prefix):
            return line
    raise AssertionError(f'process ended before printing {prefix!r}:\n' + ''.join(seen))


def checkpoint_steps(run_dir):
    """The steps of the checkpoints the run's state file lists, oldest first."""
    state = tf.train.get_checkpoint_state(os.path.join(run_dir, 'checkpoints'))
    return [int(path.rsplit('-', 1)[-1]) for path in state.all_model_checkpoint_paths]


def complete_records(run_dir):
    """The records of metrics.jsonl that were written completely."""
    path = os.path.join(run_dir, 'metrics.jsonl')
    if not os.path.exists(path):
        return []
    lines = open(path).read().split('\n')
    return [json.loads(line) for line in lines[:-1] if line.strip()]


def event_steps(folder):
    """Tag -> steps of the scalar events in `folder`'s event files, in file order."""
    steps = {}
    for path in sorted(glob.glob(os.path.join(folder, 'events.out.tfevents.*'))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    return steps


def assert_strictly_increasing(values, what):
    assert all(a < b for a, b in zip(values, values[1:])), f'{what}: {values}'


def test_random_sigkills_leave_logs_consistent_with_checkpoints(tmp_path):
    rng = random.Random(7)
    run_dir = str(tmp_path / 'run-ppo_pendulum')
    output, kills, torn_seen = [], [], False
    for cycle in range(6):
        # One cycle kills while a metrics line is half written (the write pauses
        # in its middle); the others at a random moment after an evaluation.
        slow = cycle == 2
        process = launch(tmp_path, TINY + ['Loop.total_steps = 1000000'],
                         {SLOW_WRITE_ENV: '3'} if slow else None,
                         gin_file=None if cycle else 'configs/ppo_pendulum.gin')
        seen = []
        wait_for_line(process, 'step', seen)
        if slow:
            metrics_path = os.path.join(run_dir, 'metrics.jsonl')
            deadline = time.monotonic() + 60
            while open(metrics_path).read().endswith('\n'):
                assert time.monotonic() < deadline, 'no write was caught half done'
                time.sleep(0.02)
            torn_seen = True
        else:
            time.sleep(rng.uniform(0.0, 2.0))
        process.kill()
        seen.append(process.communicate()[0])
        output.append(''.join(seen))
        assert process.returncode == -signal.SIGKILL, output[-1]
        latest = checkpoint_steps(run_dir)[-1]
        kills.append(latest)
        # Records are written after their checkpoint: never newer, even before a resume.
        assert all(record['env_steps'] <= latest for record in complete_records(run_dir))
        if cycle == 4:
            # The latest checkpoint is damaged too: the resume goes one back.
            data = glob.glob(os.path.join(run_dir, 'checkpoints', f'ckpt-{latest}.data-*'))[0]
            with open(data, 'r+b') as file:
                file.truncate(os.path.getsize(data) // 2)
            damaged = latest
    assert torn_seen
    assert len(kills) == 6

    # SIGTERM twice inside one long graph call (50,000 batch steps): out at once.
    operative = set(glob.glob(os.path.join(run_dir, 'operative_config-*')))
    process = launch(tmp_path, ['Loop.chunk_steps = 50000', 'Loop.total_steps = 10000000'],
                     gin_file=None)
    seen = []
    wait_for_line(process, 'resuming', seen)
    time.sleep(10)  # Building and tracing take a few seconds; then the call runs.
    process.send_signal(signal.SIGTERM)
    time.sleep(1)
    assert process.poll() is None, 'the first SIGTERM must wait for a safe point'
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    elapsed = time.monotonic() - sent
    output.append(''.join(seen) + process.stdout.read())
    assert process.returncode == 128 + signal.SIGTERM, output[-1]
    assert elapsed < 1.0, f'exited {elapsed:.2f} s after the second SIGTERM'
    assert 'SIGTERM received again: exiting now' in output[-1]
    # It was inside its first training call (written after it returns).
    assert set(glob.glob(os.path.join(run_dir, 'operative_config-*'))) == operative

    # The last resume starts from what the double SIGTERM left and runs to the end.
    total = max(kills) + 800
    process = launch(tmp_path, [f'Loop.total_steps = {total}'], gin_file=None)
    final = process.communicate(timeout=300)[0]
    assert process.returncode == 0, final
    # Output of the resume after the torn write and the one after the damage.
    assert 'Dropping unreadable line' in output[3], output[3]
    assert f'ckpt-{damaged} does not load' in output[5] and 'trying the previous one' in (
        output[5]), output[5]
    assert os.path.exists(os.path.join(run_dir, 'checkpoints', 'damaged',
                                       os.path.basename(data)))

    records = complete_records(run_dir)
    steps = [record['env_steps'] for record in records]
    # Every evaluation once, none lost, none repeated, in order.
    assert steps == list(range(400, total + 1, 400)), steps
    assert all(record['eval_episodes'] == 2 and record['worker_restarts'] == 0
               for record in records)
    finished = json.load(open(os.path.join(run_dir, 'finished.json')))
    assert finished['env_steps'] == total and finished['eval_return'] == records[-1][
        'eval_return']

    # TensorBoard: no step of any tag twice, over all the processes' event files.
    for phase, tag in (('train', 'charts/episode_return'), ('eval', 'eval/episode_return')):
        by_tag = event_steps(os.path.join(run_dir, phase))
        assert tag in by_tag
        for name, tag_steps in by_tag.items():
            assert_strictly_increasing(tag_steps, f'{phase} {name}')
    assert event_steps(os.path.join(run_dir, 'eval'))['eval/episode_return'] == steps
    # And as TensorBoard's loader sees them (restart marks applied).
    for phase in ('train', 'eval'):
        accumulator = EventAccumulator(os.path.join(run_dir, phase), size_guidance={'tensors': 0})
        accumulator.Reload()
        for tag in accumulator.Tags()['tensors']:
            assert_strictly_increasing([event.step for event in accumulator.Tensors(tag)],
                                       f'{phase} {tag} in TensorBoard')


@pytest.mark.parametrize('max_restarts', [30, 1])
def test_worker_crashes_in_training_and_evaluation(tmp_path, max_restarts):
    run_dir = str(tmp_path / 'run-ppo_pendulum')
    params = TINY + [
        'Loop.total_steps = 1600', 'train.num_workers = 2', f'BatchEnv.max_restarts = '
        f'{max_restarts}', "make_env.env_id = 'agents_gin/CrashingPendulum-v0'",
        "make_env.env_kwargs = {'crash_probability': 0.003, 'seed': 4}"]
    process = launch(tmp_path, params)
    output = process.communicate(timeout=300)[0]
    if max_restarts == 1:
        assert process.returncode != 0
        assert 'the restart limit was reached (1 worker restarts so far, ' in output
        assert 'BatchEnv.max_restarts = 1' in output
        assert re.search(r'The last checkpoint is \S+ckpt-\d+; the run resumes from it|No '
                         r'checkpoint was saved yet', output), output
        assert 'Graph execution error' not in output
        return
    assert process.returncode == 0, output
    records = complete_records(run_dir)
    assert [record['env_steps'] for record in records] == [400, 800, 1200, 1600]
    restarts = [record['worker_restarts'] for record in records]
    assert restarts == sorted(restarts) and restarts[-1] > 0
    finished = json.load(open(os.path.join(run_dir, 'finished.json')))
    assert finished['worker_restarts'] >= restarts[-1]
    # Evaluations cut short by a restart ran again: every one is complete.
    assert 'evaluating again from the start' in output
    assert all(record['eval_episodes'] == 2 and record['eval_length'] == 200
               for record in records)
    assert 'charts/worker_restarts' in event_steps(os.path.join(run_dir, 'train'))

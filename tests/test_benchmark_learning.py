"""Learning suites as the MuJoCo benchmark runs them: real training processes, a real
SIGTERM in the middle of one, then the same suite again (skip finished, resume)."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from agents_gin.benchmarks import learning, suite

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASKS = {'pendulum': 'configs/ppo_pendulum.gin', 'cartpole': 'configs/ppo_cartpole.gin'}
# 8 envs x 50 batch steps = 400 env steps per graph call; 10 calls per run.
TINY = ('Loop.total_steps = 4000', 'Loop.eval_every = 800', 'Loop.chunk_steps = 50',
        'train.eval_episodes = 2', 'PPO.update_epochs = 1')


def _train_pid(root, task, seed):
    """The pid of the launch.train process of one run (started by this test)."""
    logdir = os.path.join(root, task, 'default')
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/cmdline', 'rb') as file:
                args = file.read().decode().split('\0')
        except OSError:
            continue
        if 'launch.train' in args and f'--logdir={logdir}' in args and \
                f'--timestamp=seed{seed}' in args:
            return int(name)
    return None


def _interrupt_after_first_eval(root, task, seed, sent, done):
    """SIGTERMs the run as soon as it has written its first evaluation."""
    metrics = os.path.join(suite.run_dir(root, task, TASKS[task], seed), 'metrics.jsonl')
    while not done.is_set():
        if os.path.exists(metrics) and os.path.getsize(metrics):
            pid = _train_pid(root, task, seed)
            if pid:
                os.kill(pid, signal.SIGTERM)
                sent.append(pid)
                return
        time.sleep(0.02)


def test_suite_skips_finished_runs_resumes_interrupted_ones_and_writes_results(tmp_path):
    root = str(tmp_path / 'runs')
    sent, done = [], threading.Event()
    watcher = threading.Thread(target=_interrupt_after_first_eval,
                               args=(root, 'pendulum', 1, sent, done))
    watcher.start()
    try:
        errors = suite.run_suite(TASKS, [0, 1], root, parallel=2, params=TINY)
    finally:
        done.set()
        watcher.join()
    assert sent, 'the pendulum seed 1 run was never interrupted'
    assert list(errors) == [('pendulum', 1)]
    assert 'did not finish' in errors[('pendulum', 1)]
    interrupted = suite.run_dir(root, 'pendulum', TASKS['pendulum'], 1)
    steps_before = [json.loads(line)['env_steps'] for line in open(
        os.path.join(interrupted, 'metrics.jsonl'))]
    assert steps_before[-1] < 4000
    assert [row['seed'] for row in suite.collect(TASKS, [0, 1], root)] == [0, 0, 1]

    finished = {(task, seed): os.path.getmtime(os.path.join(
        suite.run_dir(root, task, TASKS[task], seed), 'finished.json'))
        for task, seed in [('pendulum', 0), ('cartpole', 0), ('cartpole', 1)]}
    assert suite.run_suite(TASKS, [0, 1], root, parallel=2, params=TINY) == {}
    for (task, seed), mtime in finished.items():  # Finished runs were not run again.
        directory = suite.run_dir(root, task, TASKS[task], seed)
        assert os.path.getmtime(os.path.join(directory, 'finished.json')) == mtime
        assert len(open(directory + '.commits').readlines()) == 1
    # The interrupted run resumed from its checkpoint: its steps go on, not from 0.
    steps_after = [json.loads(line)['env_steps'] for line in open(
        os.path.join(interrupted, 'metrics.jsonl'))]
    assert steps_after[:len(steps_before)] == steps_before
    assert steps_after[len(steps_before)] > steps_before[-1] and steps_after[-1] == 4000
    assert len(open(interrupted + '.commits').readlines()) == 2
    assert len(open(os.path.join(interrupted, 'command')).read().split('launch.train')) == 3

    rows = suite.collect(TASKS, [0, 1], root)
    assert [(row['task'], row['seed']) for row in rows] == [
        ('pendulum', 0), ('pendulum', 1), ('cartpole', 0), ('cartpole', 1)]
    for row in rows:
        records = [json.loads(line) for line in open(os.path.join(row['run_dir'],
                                                                  'metrics.jsonl'))]
        assert row['env_steps'] == 4000 and row['eval_return'] == records[-1]['eval_return']
        assert row['curve'] == [[r['env_steps'], r['eval_return']] for r in records]
        assert row['curve_seconds'] == [r['seconds'] for r in records]
        assert row['seconds'] == records[-1]['seconds'] > 0
        # Others may commit while the suite runs: a commit id, marked when the tree differs.
        assert re.fullmatch(r'[0-9a-f]{40}(-dirty)?', row['git_commit']), row['git_commit']
    # Pendulum: 8 envs end their 200-step episodes together, so every train summary is
    # the mean of 8 episodes and the 16 episodes of 4000 steps are all in the last 100.
    pendulum = rows[0]
    returns = suite.scalars(os.path.join(pendulum['run_dir'], 'train'),
                                   'charts/episode_return')
    assert len(returns) == 2
    np.testing.assert_allclose(pendulum['train_return_last100'], np.mean(returns), rtol=1e-5)

    out = tmp_path / 'results'
    paths = suite.write_results(rows, 'suite', str(out))
    assert sorted(os.listdir(out)) == ['suite.json', 'suite_cartpole.png', 'suite_pendulum.png']
    assert paths[0] == str(out / 'suite.json')
    written = json.load(open(out / 'suite.json'))['runs']
    assert written == json.loads(json.dumps(rows))
    for run in written:
        assert {'task', 'seed', 'env_steps', 'eval_return', 'train_return_last100', 'seconds',
                'curve', 'git_commit'} <= set(run)
    table = suite.summary_table(rows)
    evals = sorted(row['eval_return'] for row in rows[2:])
    assert f'| cartpole | 2 | 4,000 | {np.median(evals):,.0f} ({evals[0]:,.0f} to ' \
           f'{evals[1]:,.0f}) |' in table


def test_collect_keeps_only_finished_runs(tmp_path):
    root = str(tmp_path)
    for seed, finished in [(0, True), (1, False)]:
        directory = suite.run_dir(root, 'hopper', 'configs/ppo_hopper.gin', seed)
        os.makedirs(directory)
        with open(os.path.join(directory, 'metrics.jsonl'), 'w') as file:
            for steps in (500, 1000):
                file.write(json.dumps({'env_steps': steps, 'seconds': steps / 100,
                                       'eval_return': steps + seed,
                                       'train_return_last100': steps / 2}) + '\n')
        if finished:
            open(os.path.join(directory, 'finished.json'), 'w').write('{}')
        with open(directory + '.commits', 'w') as file:
            file.write('2026-01-01T00:00:00 abc\n2026-01-02T00:00:00 def\n'
                       '2026-01-03T00:00:00 abc\n')
    rows = suite.collect({'hopper': 'configs/ppo_hopper.gin'}, [0, 1], root)
    assert len(rows) == 1
    assert rows[0]['curve'] == [[500, 500], [1000, 1000]]
    assert rows[0]['train_return_last100'] == 500
    assert rows[0]['git_commit'] == 'abc' and rows[0]['git_commits'] == ['abc', 'def']


def test_launcher_names_an_unknown_suite_task():
    result = subprocess.run(
        [sys.executable, '-m', 'launch.benchmark', '--mode=learning', '--task=mujoco',
         '--suite_tasks=hopper,humanoidd', '--collect_only', '--root=/nonexistent'],
        cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0
    assert ('--suite_tasks: unknown MuJoCo task(s) humanoidd; valid: halfcheetah, hopper, '
            'walker2d, ant') in result.stderr


def test_parallel_must_be_positive():
    with pytest.raises(ValueError, match=r'^parallel must be >= 1, got 0$'):
        suite.run_suite(TASKS, [0], '/nonexistent', parallel=0)


def test_mujoco_collect_only_writes_json_from_finished_runs(tmp_path):
    root = str(tmp_path / 'runs')
    directory = suite.run_dir(root, 'ant', learning.MUJOCO['ant'], 2)
    os.makedirs(directory)
    with open(os.path.join(directory, 'metrics.jsonl'), 'w') as file:
        file.write(json.dumps({'env_steps': 1000000, 'seconds': 900.0, 'eval_return': 3400.0,
                               'train_return_last100': 2000.0}) + '\n')
    open(os.path.join(directory, 'finished.json'), 'w').write('{}')
    rows, errors = learning.mujoco([0, 1, 2], root, 1, collect_only=True,
                                   out_dir=str(tmp_path / 'out'))
    assert errors == {} and [(r['task'], r['seed']) for r in rows] == [('ant', 2)]
    assert json.load(open(tmp_path / 'out' / 'ppo_mujoco.json'))['runs'][0]['eval_return'] \
        == 3400.0
    assert os.path.exists(tmp_path / 'out' / 'ppo_mujoco_ant.png')

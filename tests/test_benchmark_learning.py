"""Learning suites as the MuJoCo benchmark runs them: real training processes, a real
SIGTERM in the middle of one, then the same suite again (skip finished, resume)."""

import glob
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

from agents_gin.benchmarks import end_to_end, learning, published, suite, time_to_score

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

    # The time split of the same run: evaluations from metrics.jsonl (the loop's clock
    # includes each, the last too), updates from TensorBoard, collection the rest.
    records = [json.loads(line) for line in open(os.path.join(pendulum['run_dir'],
                                                              'metrics.jsonl'))]
    split = end_to_end.time_split(pendulum['run_dir'])
    per_update = suite.scalars(os.path.join(pendulum['run_dir'], 'train'),
                               'charts/update_seconds')
    assert records[-1]['updates'] == 2 and len(per_update) == 2
    np.testing.assert_allclose(split['updates'], 2 * np.mean(per_update))
    np.testing.assert_allclose(split['evaluation'], sum(r['eval_seconds'] for r in records))
    assert records[0]['seconds'] >= records[0]['eval_seconds']
    np.testing.assert_allclose(split['collection'] + split['updates'] + split['evaluation'],
                               records[-1]['seconds'])
    assert split['collection'] > 0 and split['updates'] > 0 and split['evaluation'] > 0

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


@pytest.mark.parametrize('flags, message', [
    (['--task=mujoco', '--suite_tasks=hopper,humanoidd'],
     '--suite_tasks: unknown mujoco task(s) humanoidd; valid: halfcheetah, hopper, '
     'walker2d, ant'),
    (['--task=time_to_score', '--suite_tasks=ant'],
     '--suite_tasks: unknown time_to_score task(s) ant; valid: halfcheetah, hopper'),
    (['--task=pendulum', '--suite_tasks=hopper'],
     '--suite_tasks applies to --task=mujoco or time_to_score, not pendulum'),
    (['--task=mujoco', '--parallel=0'], '--parallel must be >= 1, got 0'),
])
def test_launcher_names_a_bad_flag_in_one_line(flags, message):
    result = subprocess.run(
        [sys.executable, '-m', 'launch.benchmark', '--mode=learning', '--collect_only',
         '--root=/nonexistent', *flags], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip() == f'Error: {message}'


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


def test_end_to_end_report_gives_rates_shares_and_ratio():
    split = {'env_steps': 100_000, 'seconds': 50.0, 'collection': 30.0, 'updates': 15.0,
             'evaluation': 5.0}
    assert end_to_end.report(split, raw=8000.0).splitlines() == [
        'End to end: 2,000 env steps/s over 100,000 steps in 50 s; raw env loop 8,000 '
        'steps/s; ratio 0.25',
        '| part | seconds | share | env steps/s of that part |', '|---|---:|---:|---:|',
        '| collection | 30.0 | 60% | 3,333 |', '| updates | 15.0 | 30% | - |',
        '| evaluation | 5.0 | 10% | - |']


def test_raw_rate_steps_real_envs():
    # Pendulum steps in ~30 us: even a loaded core does thousands per second.
    assert 1000 < end_to_end.raw_rate('Pendulum-v1', 2, seconds=0.3) < 10**7


def test_paac_pong_run_writes_its_json_and_plot(tmp_path):
    # The real Atari pipeline (ALE, preprocessing, NIPS network), made tiny.
    params = ('train.num_envs = 2', 'train.eval_episodes = 2', 'Loop.chunk_steps = 20',
              'make_env.max_episode_steps = 40')
    rows, errors = learning.paac_pong([0], str(tmp_path / 'runs'), 1, steps=80, params=params,
                                      out_dir=str(tmp_path / 'out'))
    assert errors == {}
    assert [(row['task'], row['seed'], row['env_steps']) for row in rows] == [('pong', 0, 80)]
    written = json.load(open(tmp_path / 'out' / 'paac_pong.json'))['runs']
    assert written[0]['curve'] == rows[0]['curve'] and len(rows[0]['curve']) == 1
    assert -40 <= written[0]['eval_return'] <= 40  # Pong scores points, at most 40 steps.
    assert sorted(os.listdir(tmp_path / 'out')) == ['paac_pong.json', 'paac_pong_pong.png']
    config = open(os.path.join(rows[0]['run_dir'], 'config.gin')).read()
    assert 'PAAC.learning_rate_decay = None' in config


def test_time_to_score_stops_both_sides_at_the_threshold(tmp_path):
    pytest.importorskip('stable_baselines3')
    # A threshold every policy passes: both sides stop at their first evaluation.
    # Ours evaluates after its first graph call (2,500 steps); the peer after one update.
    rows = time_to_score.benchmark([0], str(tmp_path / 'runs'), tasks=['hopper'],
                                   eval_every=1000, thresholds={'hopper': -1e9},
                                   out_dir=str(tmp_path / 'out'))
    assert [(r['framework'], r['env_steps']) for r in rows] == [
        ('agents_gin', 2500), ('stable-baselines3', 1000)]
    for row in rows:
        assert row['task'] == 'hopper' and row['threshold'] == -1e9 and row['seconds'] > 0
        assert row['seconds'] == row['curve'][0][1] and row['env_steps'] == row['curve'][0][0]
    first = json.loads(open(glob.glob(str(tmp_path / 'runs' / '*' / 'hopper' / '*' /
                                          'metrics.jsonl'))[0]).readline())
    assert rows[0]['seconds'] == pytest.approx(first['seconds'] - first['eval_seconds'])
    assert len(rows[1]['curve']) == 1  # The peer stopped at once.
    log = open(glob.glob(str(tmp_path / 'runs' / '*' / 'hopper' / 'seed0.log'))[0]).read()
    assert 'Stopped by SIGTERM' in log  # Ours was stopped, not run to its budget.
    assert json.load(open(tmp_path / 'out' / 'time_to_score.json'))['runs'] == rows
    assert time_to_score.table(rows).splitlines()[2].startswith('| hopper | -1e+09 | ')


def test_time_to_score_table_counts_unreached_runs_as_never():
    rows = [{'task': 'hopper', 'framework': f, 'threshold': 2000.0, 'seconds': s}
            for f, s in [('agents_gin', 100.0), ('agents_gin', None), ('agents_gin', 50.0),
                         ('stable-baselines3', 900.0), ('stable-baselines3', None),
                         ('stable-baselines3', None)]]
    assert time_to_score.table(rows).splitlines()[2] == (
        '| hopper | 2000 | 100 (2/3) | not reached (1/3) | infx |')


def test_published_figures_sit_beside_our_numbers_taken_their_way():
    curves = [[[50000, 100.0], [100000, 4000.0], [150000, 3000.0]],
              [[50000, 300.0], [100000, 5000.0], [150000, 6000.0]],
              [[50000, 200.0], [100000, 6000.0], [150000, 3300.0]]]
    rows = [{'task': 'halfcheetah', 'seed': seed, 'eval_return': curve[-1][1],
             'train_return_last100': train, 'curve': curve}
            for seed, (curve, train) in enumerate(zip(curves, [1000.0, 2000.0, 4000.0]))]
    ours = published.our_statistics(rows)
    assert ours['median_eval'] == 3300.0 and ours['mean_eval'] == pytest.approx(4100.0)
    assert ours['mean_train'] == pytest.approx(7000 / 3)
    # Tianshou's way: the best point of the mean-over-seeds curve (100k: 5000).
    assert ours['best_mean_eval'] == pytest.approx(np.mean(curves, axis=0)[:, 1].max())
    assert ours['best_mean_eval'] == pytest.approx(5000.0)
    line = published.comparison_table(rows).splitlines()[2]
    assert line.startswith('| halfcheetah | 3 | 3,300 (3,000 to 6,000) | 2,000 (1,000 to 4,000) | ')
    assert 'CleanRL (v4, 3 seeds, last 100 training episodes): 1,443 vs 2,333' in line
    assert 'tf-agents (v2, 3 runs, mean evaluation): 4,239 vs 4,100' in line
    assert 'rl-zoo (v3, one tuned agent, deterministic evaluation): 5,819 vs 3,300' in line
    assert 'Tianshou (v3, 10 seeds, best average within 1M): 5,784 vs 5,000' in line
    ant = published.comparison_table([dict(row, task='ant') for row in rows]).splitlines()[2]
    assert 'CleanRL' not in ant and 'rl-zoo (v3, one tuned agent, deterministic ' \
        'evaluation): 1,327 vs 3,300' in ant


def test_steps_flag_is_applied_or_refused_by_name():
    from agents_gin.benchmarks import learning
    with pytest.raises(ValueError, match='^--steps does not apply to --task=pendulum'):
        learning.validate('pendulum', steps=1000)
    with pytest.raises(ValueError, match='^--steps must be >= 1, got 0$'):
        learning.validate('halfcheetah', steps=0)
    learning.validate('halfcheetah', steps=1000)

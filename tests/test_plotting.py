import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest

from agents_gin import plotting

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_run(folder, returns, params=(), seed=0, config='ppo_pendulum'):
    """A run directory as launch.train leaves it: metrics.jsonl and the command line."""
    os.makedirs(folder)
    with open(os.path.join(folder, 'metrics.jsonl'), 'w') as file:
        for index, value in enumerate(returns):
            file.write(json.dumps({'env_steps': 1000 * (index + 1), 'seconds': 2.0 * (index + 1),
                                   'eval_return': value}) + '\n')
    words = ['python', '-m', 'launch.train', f'--logdir={os.path.dirname(folder)}',
             f'--seed={seed}', f'--gin_file=/x/configs/{config}.gin']
    words += [f'--gin_param={param}' for param in params]
    with open(os.path.join(folder, 'command'), 'w') as file:
        file.write(shlex.join(words) + '\n' + shlex.join(words[:4]) + ' --timestamp=x\n')


def sweep_runs(root):
    """Two settings x two seeds in the sweep's layout, plus a common binding."""
    runs = {}
    returns = {(0.9, 0): [-1000, -500, -200], (0.9, 1): [-900, -300, -150],
               (0.95, 0): [-800, -400], (0.95, 1): [-700, -600, -100]}
    for (discount, seed), values in returns.items():
        runs[discount, seed] = str(root / f'PPO.discount={discount}' / f'seed{seed}-ppo_pendulum')
        write_run(runs[discount, seed], values, seed=seed,
                  params=[f'PPO.discount = {discount}', 'Loop.total_steps = 3000',
                          f'train.seed = {seed}'])
    return runs


def test_runs_are_grouped_by_their_bindings_not_their_config(tmp_path):
    runs = sweep_runs(tmp_path / 'sweep')
    groups = plotting.group_runs(sorted(runs.values()))
    assert groups == {'PPO.discount=0.9': [runs[0.9, 0], runs[0.9, 1]],
                      'PPO.discount=0.95': [runs[0.95, 0], runs[0.95, 1]]}
    # Mean and min-max over the seeds of each setting, against numpy.
    for discount in (0.9, 0.95):
        records = [plotting.read_metrics(runs[discount, seed]) for seed in (0, 1)]
        x, mean, low, high = plotting._band(records, 'env_steps')
        length = min(len(r) for r in records)
        values = np.array([[r['eval_return'] for r in run[:length]] for run in records])
        assert list(x) == [1000 * (i + 1) for i in range(length)]
        assert np.array_equal(mean, values.mean(0)) and np.array_equal(low, values.min(0))
        assert np.array_equal(high, values.max(0))
    # Runs of another config without bindings: the legend names the configs too.
    other = str(tmp_path / '20260101T000000-ppo_cartpole')
    write_run(other, [10, 20], config='ppo_cartpole')
    labels = list(plotting.group_runs([runs[0.9, 0], other]))
    assert labels == ['ppo_cartpole, Loop.total_steps=default, PPO.discount=default',
                      'ppo_pendulum, Loop.total_steps=3000, PPO.discount=0.9']
    # Plain runs of one config with no bindings still form one curve named after it.
    plain = [str(tmp_path / f'2026010{seed}T000000-ppo_pendulum') for seed in (2, 3)]
    for seed, folder in zip((2, 3), plain):
        write_run(folder, [-1, -2], seed=seed)
    assert plotting.group_runs(plain) == {'ppo_pendulum': plain}


def test_find_runs_takes_folders_patterns_and_names_what_matches_nothing(tmp_path):
    runs = sweep_runs(tmp_path / 'sweep')
    assert plotting.find_runs([str(tmp_path / 'sweep')]) == sorted(runs.values())
    assert plotting.find_runs([str(tmp_path / 'sweep' / 'PPO.discount=0.9' / '*'),
                               runs[0.95, 1], runs[0.9, 0]]) == [
        runs[0.9, 0], runs[0.9, 1], runs[0.95, 1]]
    with pytest.raises(ValueError, match=r"^--runs='/nowhere/\*' matches nothing$"):
        plotting.find_runs(['/nowhere/*'])
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match=r"matches no run directory \(none holds metrics"):
        plotting.find_runs([str(tmp_path / 'empty')])


def test_plot_cli_takes_repeated_runs_and_draws_one_curve_per_setting(tmp_path):
    runs = sweep_runs(tmp_path / 'sweep')
    result = subprocess.run(
        [sys.executable, '-m', 'launch.plot', f'--runs={tmp_path}/sweep/PPO.discount=0.9',
         f'--runs={runs[0.95, 0]}', f'--out={tmp_path}/curves', '--title=Pendulum'],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        'PPO.discount=0.9: 2 runs', 'PPO.discount=0.95: 1 runs', f'{tmp_path}/curves.png',
        f'{tmp_path}/curves.svg']
    with open(tmp_path / 'curves.png', 'rb') as file:
        assert file.read(8) == b'\x89PNG\r\n\x1a\n'
    svg = (tmp_path / 'curves.svg').read_text()
    assert 'PPO.discount=0.9 (2 runs)' in svg and 'PPO.discount=0.95 (1 runs)' in svg
    bad = subprocess.run([sys.executable, '-m', 'launch.plot', '--runs=/nowhere'],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert bad.returncode == 2 and "--runs='/nowhere' matches nothing" in bad.stderr


def test_curves_from_real_tiny_runs(tmp_path):
    import gin

    from agents_gin import experiment, gin_config, run_setup
    configs = os.path.join(REPO, 'configs')
    runs = []
    for seed in (0, 1):
        gin.clear_config()
        params = ['train.num_envs = 4', 'train.eval_episodes = 2', 'Loop.total_steps = 2000',
                  'Loop.eval_every = 1000']
        gin_config.parse([os.path.join(configs, 'paac_cartpole.gin')],
                         params + [f'train.seed = {seed}'], [configs])
        runs.append(str(tmp_path / f'2026010{seed}T000000-paac_cartpole'))
        run_setup.write_run_files(runs[-1], ['train', '--gin_file=paac_cartpole.gin'] + [
            f'--gin_param={p}' for p in params] + [f'--seed={seed}'], False)
        experiment.train(runs[-1])
    assert plotting.group_runs(runs) == {'paac_cartpole': runs}
    x, mean, low, high = plotting._band([plotting.read_metrics(run) for run in runs],
                                        'env_steps')
    assert list(x) == [1200, 2000]  # Evaluations after the chunks of 400 steps that pass 1000.
    returns = np.array([[r['eval_return'] for r in plotting.read_metrics(run)] for run in runs])
    assert np.array_equal(mean, returns.mean(0)) and np.array_equal(low, returns.min(0))
    paths = plotting.plot(runs, str(tmp_path / 'real'))
    assert all(os.path.getsize(path) > 1000 for path in paths)

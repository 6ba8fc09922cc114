"""A local sweep end to end: 2 settings x 2 seeds, summary, and a second run that resumes."""

import csv
import os

from agents_gin import sweep
from launch.sweep import parse_grid

TINY = ['train.num_envs = 2', 'train.eval_episodes = 1', 'PPO.update_every = 2',
        'PPO.update_epochs = 1', 'Loop.chunk_steps = 100', 'Loop.eval_every = 400',
        'Loop.total_steps = 400', 'make_env.max_episode_steps = 100', 'PPO.max_length = 100']


def test_grid_and_names():
    grid = parse_grid(['PPO.discount=[0.9, 0.95]', "make_env.env_id=['Pendulum-v1']"])
    assert grid == {'PPO.discount': [0.9, 0.95], 'make_env.env_id': ['Pendulum-v1']}
    settings = sweep.grid_settings(grid)
    assert [sweep.setting_name(s) for s in settings] == [
        'PPO.discount=0.9,make_env.env_id=Pendulum-v1',
        'PPO.discount=0.95,make_env.env_id=Pendulum-v1']
    assert len(sweep.random_settings({'a': [1, 2, 3], 'b': [4, 5]}, 4)) == 4


def test_local_sweep_runs_summarizes_and_resumes_only_what_is_missing(tmp_path):
    grid = {'PPO.discount': [0.9, 0.95]}
    root = str(tmp_path / 'sweep')
    rows = sweep.run_sweep(['configs/ppo_pendulum.gin'], grid, [0, 1], root, workers=2,
                           extra_params=TINY)
    assert [row['setting'] for row in rows] == ['PPO.discount=0.9', 'PPO.discount=0.95']
    assert all(row['finished'] == 2 and row['mean_return'] < 0 for row in rows)
    with open(os.path.join(root, 'summary.csv')) as file:
        assert len(list(csv.DictReader(file))) == 2
    runs = {(d, s): sweep.run_directory(root, [('PPO.discount', d)], s, 'ppo_pendulum')
            for d in (0.9, 0.95) for s in (0, 1)}
    assert 'PPO.discount = 0.95' in open(os.path.join(runs[0.95, 1], 'config.gin')).read()

    # Interrupt one run: it lost its completion mark; the others stay finished.
    os.remove(os.path.join(runs[0.9, 1], 'finished.json'))
    again = sweep.run_sweep(['configs/ppo_pendulum.gin'], grid, [0, 1], root, workers=2,
                            extra_params=TINY)
    assert again == rows
    commands = {key: len(open(os.path.join(path, 'command')).read().splitlines())
                for key, path in runs.items()}
    assert commands == {(0.9, 0): 1, (0.9, 1): 2, (0.95, 0): 1, (0.95, 1): 1}


def test_ray_backend_runs_trials_with_a_local_ray(tmp_path):
    pytest = __import__('pytest')
    pytest.importorskip('ray', reason="Ray is an optional extra: pip install -e '.[ray]'")
    import ray
    root = str(tmp_path / 'sweep')
    try:
        rows = sweep.run_sweep(['configs/ppo_pendulum.gin'], {'PPO.discount': [0.9]}, [0, 1],
                               root, extra_params=TINY, backend='ray')
    finally:
        ray.shutdown()
    assert rows[0]['finished'] == 2 and rows[0]['mean_return'] < 0
    for seed in (0, 1):
        run = sweep.run_directory(root, [('PPO.discount', 0.9)], seed, 'ppo_pendulum')
        assert os.path.exists(os.path.join(run, 'finished.json'))
        assert len(open(os.path.join(run, 'command')).read().splitlines()) == 1

"""launch.visualize on a real tiny run: playable MP4s whose frames match the statistics."""

import json
import os

import imageio.v2 as imageio
import pytest

from agents_gin import experiment, run_setup, visualize

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')


@pytest.mark.parametrize('config, bindings', [
    ('ppo_pendulum.gin', ['make_env.max_episode_steps = 50', 'PPO.max_length = 50']),
    ('paac_cartpole.gin', ['make_env.max_episode_steps = 40']),
    ('ppo_halfcheetah.gin', ['make_env.max_episode_steps = 30', 'PPO.max_length = 30',
                             'PPO.update_every = 2']),
    ('paac_pong.gin', ['make_env.max_episode_steps = 25']),
])
def test_videos_and_statistics_from_a_trained_run(tmp_path, config, bindings):
    run_dir = str(tmp_path / 'run')
    run_setup.parse_config([os.path.join(CONFIGS, config)], bindings + [
        'train.num_envs = 2', 'train.eval_episodes = 1', 'Loop.total_steps = 200',
        'Loop.eval_every = 200', 'Loop.chunk_steps = 25'], [CONFIGS])
    os.makedirs(run_dir)
    run_setup.write_run_files(run_dir, ['train'], resuming=False)
    experiment.train(run_dir)
    import gin
    gin.clear_config()
    stats = visualize.visualize(run_dir, str(tmp_path / 'videos'), num_episodes=2,
                                search_paths=[CONFIGS])
    assert len(stats['episodes']) == 2
    for episode in stats['episodes']:
        reader = imageio.get_reader(str(tmp_path / 'videos' / episode['video']))
        frames = sum(1 for _ in reader)
        assert frames == episode['frames'] == episode['length'] + 1
        limit = {'ppo_pendulum.gin': 50, 'paac_cartpole.gin': 40, 'ppo_halfcheetah.gin': 30,
                 'paac_pong.gin': 25}[config]
        assert episode['length'] <= limit
    with open(tmp_path / 'videos' / 'stats.json') as file:
        assert json.load(file)['mean_return'] == pytest.approx(stats['mean_return'])

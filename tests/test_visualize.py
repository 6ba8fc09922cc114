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
])
def test_videos_and_statistics_from_a_trained_run(tmp_path, config, bindings):
    run_dir = str(tmp_path / 'run')
    run_setup.parse_config([os.path.join(CONFIGS, config)], bindings + [
        'train.num_envs = 2', 'train.eval_episodes = 1', 'Loop.total_steps = 400',
        'Loop.eval_every = 400', 'Loop.chunk_steps = 50'], [CONFIGS])
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
        assert episode['length'] <= (50 if 'pendulum' in config else 40)
    with open(tmp_path / 'videos' / 'stats.json') as file:
        assert json.load(file)['mean_return'] == pytest.approx(stats['mean_return'])

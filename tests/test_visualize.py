"""launch.visualize on a real tiny run: playable MP4s whose frames match the statistics.

And its refusals: one `Error:` line, no traceback, for anything but a run directory.
"""

import json
import os
import subprocess
import sys

import imageio.v2 as imageio
import pytest

from agents_gin import experiment, run_setup, visualize

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, 'configs')
RUN_DIR_HELP = ('a run directory is the folder launch.train makes inside --logdir, '
                '<logdir>/<timestamp>-<config name>, holding config.gin and checkpoints/')


@pytest.mark.parametrize('config, bindings', [
    ('ppo_pendulum.gin', ['make_env.max_episode_steps = 50', 'PPO.max_length = 50']),
    ('paac_cartpole.gin', ['make_env.max_episode_steps = 40']),
    ('ppo_halfcheetah.gin', ['make_env.max_episode_steps = 30', 'PPO.max_length = 30',
                             'PPO.update_every = 2', 'Loop.checkpoint_every = 50']),
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
    if config == 'ppo_pendulum.gin':  # Through the launcher, with its default --outdir.
        result = subprocess.run(
            [sys.executable, '-m', 'launch.visualize', f'--run_dir={run_dir}',
             '--num_episodes=2'], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        stats = json.loads(result.stdout)
        outdir = os.path.join(run_dir, 'videos')
    else:
        outdir = str(tmp_path / 'videos')
        stats = visualize.visualize(run_dir, outdir, num_episodes=2, search_paths=[CONFIGS])
    assert stats['outdir'] == outdir
    assert stats['checkpoint'] == os.path.join(run_dir, 'checkpoints', 'ckpt-200')
    assert len(stats['episodes']) == 2
    returns = [episode['return'] for episode in stats['episodes']]
    assert stats['mean_return'] == pytest.approx(sum(returns) / 2, rel=1e-9)
    if config == 'paac_cartpole.gin':  # Reward 1 per step: the return is the length.
        assert returns == [episode['length'] for episode in stats['episodes']]
    for episode in stats['episodes']:
        reader = imageio.get_reader(os.path.join(outdir, episode['video']))
        frames = sum(1 for _ in reader)
        assert frames == episode['frames'] == episode['length'] + 1
        limit = {'ppo_pendulum.gin': 50, 'paac_cartpole.gin': 40, 'ppo_halfcheetah.gin': 30,
                 'paac_pong.gin': 25}[config]
        assert episode['length'] <= limit
    with open(os.path.join(outdir, 'stats.json')) as file:
        assert json.load(file)['mean_return'] == pytest.approx(stats['mean_return'])
    if config == 'ppo_halfcheetah.gin':
        # The checkpoint's weights are the ones played: ckpt-50 holds the policy before the
        # first update (two 30-step episodes on 2 envs, at 60 steps), and the same seed
        # plays it differently from the trained ckpt-200.
        gin.clear_config()
        early = visualize.visualize(run_dir, str(tmp_path / 'early'), num_episodes=1,
                                    checkpoint=os.path.join(run_dir, 'checkpoints', 'ckpt-50'),
                                    search_paths=[CONFIGS])
        assert early['episodes'][0]['return'] != stats['episodes'][0]['return']


def _fake_runs(root):
    """A folder of runs as launch.train lays it out (config.gin, an empty checkpoint)."""
    runs = root / 'runs'
    for name in ('20260101T000000-ppo_pendulum', '20260102T000000-ppo_pendulum'):
        (runs / name / 'checkpoints').mkdir(parents=True)
        (runs / name / 'config.gin').write_text('')
    (runs / '20260102T000000-ppo_pendulum' / 'checkpoints' / 'ckpt-1.index').write_text('')
    (root / 'file.txt').write_text('')
    (root / 'empty').mkdir()
    return runs


@pytest.mark.parametrize('flags, message', [
    ([], '--run_dir is required: ' + RUN_DIR_HELP
     + ', e.g. --run_dir=runs/20261122T010334-ppo_pendulum'),
    (['--run_dir={root}/missing'], '{root}/missing does not exist: ' + RUN_DIR_HELP + '.'),
    (['--run_dir={root}/file.txt'], '{root}/file.txt is a file: ' + RUN_DIR_HELP + '.'),
    (['--run_dir={root}/empty'], '{root}/empty is not a run directory (it has no config.gin): '
     + RUN_DIR_HELP + '.'),
    (['--run_dir={root}/runs'], '{root}/runs is not a run directory (it has no config.gin): '
     + RUN_DIR_HELP + '. It holds runs; give one of them, e.g. '
     '{root}/runs/20260102T000000-ppo_pendulum'),
    (['--run_dir={root}/runs/20260101T000000-ppo_pendulum'],
     '{root}/runs/20260101T000000-ppo_pendulum has no checkpoint in checkpoints/ yet: a run '
     'saves one every Loop.checkpoint_every env steps and when it ends or is stopped; train it '
     'first.'),
    (['--logdir={root}/runs'], "launch.visualize takes --run_dir, one run's folder, not "
     "--logdir={root}/runs (launch.train's folder of runs): e.g. "
     '--run_dir={root}/runs/20260102T000000-ppo_pendulum'),
    (['--run_dir={root}/runs/20260102T000000-ppo_pendulum',
      '--checkpoint={root}/runs/ckpt-9'], 'Checkpoint {root}/runs/ckpt-9 does not exist (no '
     "{root}/runs/ckpt-9.index); the run's checkpoints are the ckpt-<n> prefixes in "
     '{root}/runs/20260102T000000-ppo_pendulum/checkpoints.'),
    (['--run_dir={root}/runs/20260102T000000-ppo_pendulum', '--num_episodes=0'],
     'num_episodes = 0 is invalid: expected an integer >= 1.'),
])
def test_launcher_refuses_what_is_not_a_run_with_one_error_line(tmp_path, flags, message):
    _fake_runs(tmp_path)
    result = subprocess.run(
        [sys.executable, '-m', 'launch.visualize'] + [f.format(root=tmp_path) for f in flags],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stdout == f'Error: {message.format(root=tmp_path)}\n'
    assert 'Traceback' not in result.stderr

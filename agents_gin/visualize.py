"""Renders a trained policy: MP4 videos of whole episodes and their statistics as JSON.

The environment runs in a worker process: MuJoCo's off-screen OpenGL (EGL) and
TensorFlow crash when loaded into the same process, and the worker keeps
TensorFlow out.

The run's saved config.gin rebuilds the environment and the algorithm; the
checkpoint restores the network and the observation normaliser, so the policy
sees observations exactly as in training. Actions are the greedy policy's (the
mean, or the mode; PAAC configs may sample).

Videos are written with imageio rather than gymnasium's RecordVideo wrapper:
RecordVideo needs moviepy, which pins pillow below 12 and would downgrade what
matplotlib and TensorBoard use. (RecordVideo is still bindable in
`make_env.wrappers` for recording during training.)
"""

import functools
import glob
import json
import os

# MuJoCo renders off-screen through EGL on a machine without a display; this must
# be set before mujoco is first imported.
if not os.environ.get('DISPLAY'):
    os.environ.setdefault('MUJOCO_GL', 'egl')
    os.environ.setdefault('PYOPENGL_PLATFORM', 'egl')

from agents_gin import run_setup  # noqa: E402 -- gin only; TensorFlow loads in visualize().

RUN_DIR_HELP = ('a run directory is the folder launch.train makes inside --logdir, '
                '<logdir>/<timestamp>-<config name>, holding config.gin and checkpoints/')


def check_run_dir(run_dir):
    """Raises ConfigError unless `run_dir` holds a run's config.gin and a checkpoint.

    Cheap (no TensorFlow), so a launcher can refuse a wrong path at once. A
    parent folder of runs (train's --logdir) is recognised and its runs named.
    """
    if not os.path.isdir(run_dir):
        problem = 'is a file' if os.path.exists(run_dir) else 'does not exist'
        raise run_setup.ConfigError(f'{run_dir} {problem}: {RUN_DIR_HELP}.')
    if not os.path.isfile(os.path.join(run_dir, 'config.gin')):
        runs = runs_inside(run_dir)
        hint = (f' It holds runs; give one of them, e.g. {runs[-1]}' if runs else '')
        raise run_setup.ConfigError(
            f'{run_dir} is not a run directory (it has no config.gin): {RUN_DIR_HELP}.{hint}')
    if not glob.glob(os.path.join(run_dir, 'checkpoints', '*.index')):
        raise run_setup.ConfigError(
            f'{run_dir} has no checkpoint in checkpoints/ yet: a run saves one every '
            'Loop.checkpoint_every env steps and when it ends or is stopped; train it first.')


def runs_inside(folder):
    """Run directories directly inside `folder`, oldest first (timestamps sort)."""
    return sorted(os.path.dirname(path)
                  for path in glob.glob(os.path.join(folder, '*', 'config.gin')))


def visualize(run_dir, outdir=None, checkpoint=None, num_episodes=3, max_steps=10000, seed=0,
              search_paths=()):
    """Plays `num_episodes` episodes; returns the statistics also written to stats.json.

    `outdir` defaults to `<run_dir>/videos`; `checkpoint` to the latest one.
    Raises ConfigError, before anything is built, for a path that is not a run
    directory or a checkpoint that does not exist.
    """
    check_run_dir(run_dir)
    if num_episodes < 1:
        raise run_setup.ConfigError(
            f'num_episodes = {num_episodes} is invalid: expected an integer >= 1.')
    _check_video_writer()
    if checkpoint and not os.path.exists(checkpoint + '.index'):
        raise run_setup.ConfigError(
            f'Checkpoint {checkpoint} does not exist (no {checkpoint}.index); the run\'s '
            f'checkpoints are the ckpt-<n> prefixes in {os.path.join(run_dir, "checkpoints")}.')
    import tensorflow as tf

    from agents_gin.envs import BatchEnv, make_env

    run_setup.parse_config([os.path.join(run_dir, 'config.gin')], [], search_paths)
    path = checkpoint or tf.train.latest_checkpoint(os.path.join(run_dir, 'checkpoints'))
    outdir = outdir or os.path.join(run_dir, 'videos')
    env = BatchEnv([functools.partial(make_env, render_mode='rgb_array')], num_workers=1,
                   check_finite=False)
    try:
        # Built as experiment.train builds it: the run length sets annealing schedules.
        agent = _algorithm()(env.observation_space, env.action_space, 1,
                             total_steps=_bound('Loop.total_steps'), seed=seed)
        tf.train.Checkpoint(**agent.checkpoint_items()).restore(path).expect_partial()
        policy = agent.greedy_policy()
        os.makedirs(outdir, exist_ok=True)
        fps = env.get_attr('metadata')[0].get('render_fps', 30)
        episodes = []
        for episode in range(num_episodes):
            frames, score = _play(env, policy, seed + episode, max_steps)
            video = os.path.join(outdir, f'episode_{episode:03d}.mp4')
            _write_video(video, frames, fps)
            episodes.append({'episode': episode, 'return': score, 'length': len(frames) - 1,
                             'frames': len(frames), 'video': os.path.basename(video)})
        stats = {'run_dir': run_dir, 'checkpoint': path, 'outdir': outdir,
                 'episodes': episodes,
                 'mean_return': sum(e['return'] for e in episodes) / len(episodes)}
        with open(os.path.join(outdir, 'stats.json'), 'w') as file:
            json.dump(stats, file, indent=2)
        return stats
    finally:
        env.close()


def _algorithm():
    """The algorithm class the run was configured with."""
    import gin

    try:
        return gin.query_parameter('train.algorithm').scoped_configurable_fn
    except ValueError:
        from agents_gin.algorithms.ppo import PPO

        return PPO  # train()'s default.


def _bound(name):
    """The value bound to `name` in the run's config, or None."""
    import gin

    try:
        return gin.query_parameter(name)
    except ValueError:
        return None


def _play(env, policy, seed, max_steps):
    """One episode; returns its frames (the first observation's frame included) and return."""
    import tensorflow as tf

    env.reseed(seed)
    observ = env.reset()
    policy.begin_episode(tf.constant([0]))
    frames, score = env.call('render'), 0.0
    for _ in range(max_steps):
        action = policy.perform(tf.constant([0]), tf.constant(observ))
        observ, reward, terminated, truncated, _ = env.step(action.numpy())
        frames += env.call('render')
        score += float(reward[0])
        if terminated[0] or truncated[0]:
            break
    return frames, score


def _check_video_writer():
    """Raises ConfigError before any work when the optional video writer is missing."""
    try:
        import imageio.v2  # noqa: F401
        import imageio_ffmpeg  # noqa: F401
    except ImportError as error:
        raise run_setup.ConfigError(
            f'Writing videos needs imageio and imageio-ffmpeg ({error}): '
            "pip install -e '.[video]'") from error


def _write_video(path, frames, fps):
    """Writes RGB frames as an H.264 MP4."""
    import imageio.v2 as imageio  # Optional: pip install 'agents_gin[video]'.

    # Even sizes keep H.264 players happy.
    height, width = (dimension - dimension % 2 for dimension in frames[0].shape[:2])
    imageio.mimwrite(path, [frame[:height, :width] for frame in frames], fps=fps,
                     macro_block_size=1)

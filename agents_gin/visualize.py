"""Renders a trained policy: MP4 videos of whole episodes and their statistics as JSON.

The environment runs in a worker process: MuJoCo's off-screen OpenGL (EGL) and
TensorFlow crash when loaded into the same process, and the worker keeps
TensorFlow out.

The run's saved config.gin rebuilds the environment and the algorithm; the
checkpoint restores the network and the observation normaliser, so the policy
sees observations exactly as in training. Actions are the greedy policy's (the
mean, or the mode; PAAC configs may sample).
"""

import functools
import json
import os

# MuJoCo renders off-screen through EGL on a machine without a display; this must
# be set before mujoco is first imported.
if not os.environ.get('DISPLAY'):
    os.environ.setdefault('MUJOCO_GL', 'egl')
    os.environ.setdefault('PYOPENGL_PLATFORM', 'egl')

import gin  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from agents_gin import run_setup  # noqa: E402
from agents_gin.algorithms.ppo import PPO  # noqa: E402
from agents_gin.envs import BatchEnv, make_env  # noqa: E402


def visualize(run_dir, outdir, checkpoint=None, num_episodes=3, max_steps=10000, seed=0,
              search_paths=()):
    """Plays `num_episodes` episodes; returns the statistics also written to stats.json."""
    run_setup.parse_config([os.path.join(run_dir, 'config.gin')], [], search_paths)
    env = BatchEnv([functools.partial(make_env, render_mode='rgb_array')], num_workers=1,
                   check_finite=False)
    try:
        agent = _algorithm()(env.observation_space, env.action_space, 1)
        path = checkpoint or tf.train.latest_checkpoint(os.path.join(run_dir, 'checkpoints'))
        if path is None:
            raise FileNotFoundError(f'No checkpoint in {run_dir}/checkpoints; train first')
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
        stats = {'run_dir': run_dir, 'checkpoint': path, 'episodes': episodes,
                 'mean_return': float(np.mean([e['return'] for e in episodes]))}
        with open(os.path.join(outdir, 'stats.json'), 'w') as file:
            json.dump(stats, file, indent=2)
        return stats
    finally:
        env.close()


def _algorithm():
    """The algorithm class the run was configured with."""
    try:
        return gin.query_parameter('train.algorithm').scoped_configurable_fn
    except ValueError:
        return PPO  # train()'s default.


def _play(env, policy, seed, max_steps):
    """One episode; returns its frames (the first observation's frame included) and return."""
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


def _write_video(path, frames, fps):
    import imageio.v2 as imageio  # Optional: pip install 'agents_gin[video]'.

    # Even sizes keep H.264 players happy.
    height, width = (dimension - dimension % 2 for dimension in frames[0].shape[:2])
    imageio.mimwrite(path, [frame[:height, :width] for frame in frames], fps=fps,
                     macro_block_size=1)

"""Renders a trained policy: MP4 videos of whole episodes and their statistics as JSON.

The run's saved config.gin rebuilds the environment and the algorithm; the
checkpoint restores the network and the observation normaliser, so the policy
sees observations exactly as in training. Actions are the greedy policy's (the
mean, or the mode; PAAC configs may sample).
"""

import json
import os

import gin
import numpy as np
import tensorflow as tf

from agents_gin import run_setup
from agents_gin.algorithms.ppo import PPO
from agents_gin.envs import make_env


def visualize(run_dir, outdir, checkpoint=None, num_episodes=3, max_steps=10000, seed=0,
              search_paths=()):
    """Plays `num_episodes` episodes; returns the statistics also written to stats.json."""
    run_setup.parse_config([os.path.join(run_dir, 'config.gin')], [], search_paths)
    env = make_env(render_mode='rgb_array')
    try:
        agent = _algorithm()(env.observation_space, env.action_space, 1)
        path = checkpoint or tf.train.latest_checkpoint(os.path.join(run_dir, 'checkpoints'))
        if path is None:
            raise FileNotFoundError(f'No checkpoint in {run_dir}/checkpoints; train first')
        tf.train.Checkpoint(**agent.checkpoint_items()).restore(path).expect_partial()
        policy = agent.greedy_policy()
        os.makedirs(outdir, exist_ok=True)
        fps = env.metadata.get('render_fps', 30)
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
    observ, _ = env.reset(seed=seed)
    frames, score = [env.render()], 0.0
    for _ in range(max_steps):
        action = policy.perform(tf.constant([0]), tf.constant(np.asarray(observ)[None]))
        observ, reward, terminated, truncated, _ = env.step(action.numpy()[0])
        frames.append(env.render())
        score += float(reward)
        if terminated or truncated:
            break
    return frames, score


def _write_video(path, frames, fps):
    import imageio.v2 as imageio  # Optional: pip install 'agents_gin[video]'.

    # Even sizes keep H.264 players happy.
    height, width = (dimension - dimension % 2 for dimension in frames[0].shape[:2])
    imageio.mimwrite(path, [frame[:height, :width] for frame in frames], fps=fps,
                     macro_block_size=1)

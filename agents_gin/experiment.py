"""Builds one experiment from gin bindings and runs it.

The pieces: a training batch env (in-process or worker processes) and a
separate evaluation batch env, each behind an in-graph env; the algorithm; two
simulations (learning, and greedy evaluation); the loop.
"""

import random

import gin
import numpy as np
import tensorflow as tf

from agents_gin import threads
from agents_gin.algorithms.ppo import PPO
from agents_gin.envs import BatchEnv, make_env
from agents_gin.envs.in_graph import InGraphBatchEnv
from agents_gin.loop import Loop
from agents_gin.simulate import Simulation


@gin.configurable
def train(run_dir, seed=0, algorithm=PPO, num_envs=30, num_workers=0, eval_episodes=10):
    """Trains `algorithm` on `num_envs` copies of the gin-bound `make_env`.

    Args:
      run_dir: where checkpoints, summaries and configs go.
      seed: seeds TensorFlow, the environments (seed + i for env i; the eval envs
        with seed + 10**6 + i at every evaluation) and the algorithm.
      algorithm: an algorithm class called with (observation_space,
        action_space, num_envs, seed=seed).
      num_envs: training environments stepped as one batch.
      num_workers: 0 steps them in this process; K > 0 in K worker processes.
      eval_episodes: evaluation environments, one greedy episode each.

    Returns:
      The final evaluation's mean return.
    """
    threads.configure_threads()
    tf.random.set_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    train_env = BatchEnv([make_env] * num_envs, num_workers=num_workers, seed=seed)
    eval_env = BatchEnv([make_env] * eval_episodes)
    try:
        agent = algorithm(train_env.observation_space, train_env.action_space, num_envs,
                          seed=seed)
        _check_episode_limit(eval_env, agent)
        loop = Loop(run_dir, agent, Simulation(InGraphBatchEnv(train_env), agent),
                    Simulation(InGraphBatchEnv(eval_env), agent.greedy_policy(eval_episodes)),
                    eval_episodes=eval_episodes, eval_seed=seed + 10**6)
        return loop.run()
    finally:
        train_env.close()
        eval_env.close()


def _check_episode_limit(env, agent):
    """An episode longer than the agent's memory would fail mid-run; fail now instead."""
    max_length = getattr(agent, 'max_length', None)
    if max_length is None:
        return
    spec = env.get_attr('spec')[0]
    limit = spec.max_episode_steps if spec is not None else None
    if limit is None or limit > max_length:
        raise ValueError(
            f'Episodes of {env.name} may last {limit or "without limit"} steps, more than '
            f'{type(agent).__name__}.max_length = {max_length}. Bind make_env.max_episode_steps '
            f'to at most {max_length}, or raise {type(agent).__name__}.max_length.')

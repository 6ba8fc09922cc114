"""Builds one experiment from gin bindings and runs it.

The pieces: a training batch env (in-process or worker processes) and a
separate evaluation batch env with the same placement and restart policy, each
behind an in-graph env; the algorithm; two simulations (learning, and greedy
evaluation); the loop.

Building comes first and fails fast: values are validated, one env is made in
this process to learn the spaces and the episode limit, and the agent is built
before any worker process starts. Every error up to the first training step is
raised as a BuildError, which the launcher prints as one line (exit status 2).
"""

import random

import gin
import numpy as np
import tensorflow as tf

from agents_gin import checks, threads
from agents_gin.algorithms.ppo import PPO
from agents_gin.envs import BatchEnv, make_env
from agents_gin.envs.errors import EnvWorkerError
from agents_gin.envs.in_graph import InGraphBatchEnv
from agents_gin.loop import Loop
from agents_gin.simulate import Simulation


class BuildError(checks.ConfigError):
    """The experiment could not be built: a bad value, env id, space or network."""


@gin.configurable(denylist=['run_dir', 'on_built'])
def train(run_dir, seed=0, algorithm=PPO, num_envs=30, num_workers=0, eval_episodes=10,
          batch_env=BatchEnv, on_built=None):
    """Trains `algorithm` on `num_envs` copies of the gin-bound `make_env`.

    Args:
      run_dir: where checkpoints, summaries and configs go.
      seed: seeds TensorFlow, the environments (seed + i for env i; the eval envs
        with seed + 10**6 + i at every evaluation) and the algorithm.
      algorithm: an algorithm class called with (observation_space,
        action_space, num_envs, total_steps=Loop.total_steps, seed=seed).
      num_envs: training environments stepped as one batch.
      num_workers: 0 steps them in this process; K > 0 in K worker processes.
        The evaluation envs are placed the same way (at most one worker each).
      eval_episodes: evaluation environments, one greedy episode each.
      batch_env: the batch env class for training and evaluation, called as
        BatchEnv is: (constructors, num_workers=, seed=); e.g. @EnvPoolBatchEnv.
      on_built: called with no arguments once everything is built, before
        training (the launcher checks unused bindings there); returning False
        stops before training.

    Returns:
      The final evaluation's mean return; None when `on_built` stopped the run.
    """
    tf.random.set_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    try:
        loop, agent = _build_agent(run_dir, seed, algorithm, num_envs, num_workers,
                                   eval_episodes)
    except (ValueError, TypeError) as error:
        raise BuildError(checks.plain_message(error)) from error
    envs = []
    try:
        try:
            envs.append(batch_env([make_env] * num_envs, num_workers=num_workers, seed=seed))
            envs.append(batch_env([make_env] * eval_episodes,
                                  num_workers=min(num_workers, eval_episodes)))
        except (ValueError, TypeError, EnvWorkerError) as error:
            # EnvWorkerError here: a worker could not start (an import or binding
            # that works in this process fails in the worker).
            raise BuildError(checks.plain_message(error)) from error
        train_env, eval_env = envs
        train_simulation = Simulation(InGraphBatchEnv(train_env), agent)
        eval_simulation = Simulation(InGraphBatchEnv(eval_env),
                                     agent.greedy_policy(eval_episodes))
        if on_built is not None and on_built() is False:
            return None
        return loop.run(agent, train_simulation, eval_simulation, eval_seed=seed + 10**6)
    finally:
        for env in envs:
            env.close()


def _build_agent(run_dir, seed, algorithm, num_envs, num_workers, eval_episodes):
    """Validates the values, probes one env and builds the loop and the agent."""
    checks.integer('train.seed', seed, 0)
    num_envs = checks.integer('train.num_envs', num_envs, 1)
    checks.integer('train.num_workers', num_workers, 0)
    checks.relation(num_workers <= num_envs,
                    f'train.num_workers = {num_workers} is invalid: expected at most '
                    f'train.num_envs = {num_envs} (one env per worker at least).')
    checks.integer('train.eval_episodes', eval_episodes, 1)
    threads.configure_threads()
    loop = Loop(run_dir)
    probe = make_env()
    try:
        observation_space, action_space = probe.observation_space, probe.action_space
        limit = probe.spec.max_episode_steps if probe.spec is not None else None
        env_id = probe.spec.id if probe.spec is not None else type(probe.unwrapped).__name__
    finally:
        probe.close()
    agent = algorithm(observation_space, action_space, num_envs,
                      total_steps=loop.total_steps, seed=seed)
    _check_episode_limit(env_id, limit, agent)
    return loop, agent


def _check_episode_limit(env_id, limit, agent):
    """An episode longer than the agent's memory would fail mid-run; fail now instead."""
    max_length = getattr(agent, 'max_length', None)
    if max_length is None:
        return
    name = type(agent).__name__
    if limit is None or limit > max_length:
        raise checks.ConfigError(
            f'Episodes of {env_id} may last '
            f'{limit or "without limit"} steps, more than {name}.max_length = {max_length}. '
            f'Bind make_env.max_episode_steps to at most {max_length}, or raise '
            f'{name}.max_length.')

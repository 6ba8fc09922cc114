"""N environments stepped as one batch, in this process or over K worker processes.

Which is faster depends on the machine: a process round trip costs ~60 us, more
than a light environment's step, so on few cores in-process stepping wins; with
many cores and heavy environments, workers scale. `num_workers` picks (see the
README's benchmark table). `terminated` and `truncated` stay apart. The workers
and their restart policy live in `worker_pool`; the checks on spaces, actions
and returned values in `batch_checks`; the seeding in `env_seeds`.
"""

import functools

import gin
import numpy as np

from agents_gin import checks
from agents_gin.envs.batch_checks import ActionCheck, check_same_spaces, check_values
from agents_gin.envs.env_seeds import EnvSeeds
from agents_gin.envs.factory import make_env
from agents_gin.envs.worker import env_name
from agents_gin.envs.worker_pool import WorkerPool


def _records_errors(method):
    """Stores any exception of `method` as `self.last_error` before it propagates.

    The batch env is stepped inside a graph through tf.numpy_function, which
    wraps the exception into a TensorFlow error; the loop re-raises
    `last_error` so that the user reads the original message.
    """
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        self.last_error = None
        try:
            return method(self, *args, **kwargs)
        except Exception as error:
            self.last_error = error
            raise
    return wrapper


# The framework passes these (train.num_envs, train.num_workers, train.seed).
@gin.configurable(denylist=['constructors', 'num_workers', 'seed'])
class BatchEnv:
    """Steps a batch of environments; resets by index; validates every action batch."""

    def __init__(self, constructors, num_workers=0, max_restarts=0, seed=None,
                 check_finite=True, clip_actions=True):
        """Builds the environments.

        Args:
          constructors: one callable per environment (cloudpickled for workers).
          num_workers: 0 steps in this process; K > 0 spreads the envs over K
            worker processes, each stepping its group in one round trip. Their
            timeouts are `EnvWorker`'s: bind `EnvWorker.call_timeout` (seconds
            per step, reset or call), `EnvWorker.start_timeout` and
            `EnvWorker.close_timeout` (seconds per stage of close; all workers
            are stopped in parallel).
          max_restarts: how many times, in all, a worker that died or hung (at
            any moment: stepping, resetting, idle) is rebuilt before giving up
            with `RestartLimitExceeded`; 0 raises the first failure. The
            rebuilt worker's episodes end at the next step as truncated at
            their last real observation (reward 0); an interrupted reset or
            call is retried. `restarts` counts the restarts so far.
          seed: base seed; environment i is seeded with seed + i at its first
            reset, and with seed + i + N * restarts after its worker's restart.
          check_finite: raise on a non-finite observation or reward.
          clip_actions: clip actions outside a bounded Box to the bounds before
            stepping (the caller's array is left as it is, so the agent learns
            from its own sample); False raises on them instead. Non-finite
            actions always raise.
        """
        constructors = list(constructors)
        self.num_envs = len(constructors)
        if self.num_envs < 1:
            raise ValueError('BatchEnv needs at least one environment constructor')
        if num_workers > self.num_envs:
            raise ValueError(f'BatchEnv.num_workers={num_workers} exceeds the number of '
                             f'environments ({self.num_envs}); use at most that many')
        checks.integer('BatchEnv.max_restarts', max_restarts, 0)
        self.max_restarts = max_restarts
        self.last_error = None
        self._check_finite = check_finite
        self._seeds = EnvSeeds(seed, self.num_envs)
        self._closed = False
        self._envs, self._pool = [], None
        if num_workers:
            self._pool = WorkerPool(constructors, num_workers, max_restarts, self._seeds)
            spaces = self._pool.spaces  # Checked to match by the pool.
        else:
            self._envs = [constructor() for constructor in constructors]
            spaces = [(env.observation_space, env.action_space, env_name(env))
                      for env in self._envs]
            check_same_spaces(spaces)
        self.observation_space, self.action_space, self.name = spaces[0]
        self.names = [name for _, _, name in spaces]
        self._check_actions = ActionCheck(self.action_space, self.names, clip_actions)

    def __len__(self):
        return self.num_envs

    @property
    def restarts(self):
        """How many times a worker was rebuilt so far (always 0 in-process)."""
        return self._pool.restarts if self._pool else 0

    @property
    def _workers(self):
        """The worker processes, empty in-process (tests read their pids)."""
        return self._pool.workers if self._pool else []

    @_records_errors
    def step(self, actions):
        """Steps every environment with its action.

        Returns:
          observ [N, ...], reward [N] float32, terminated [N] bool, truncated [N]
          bool, and a tuple of N info dicts. An env whose worker was restarted
          returns its previous observation, reward 0, truncated True and the
          info {'worker_restarted': True}.
        """
        actions = self._check_actions(actions)
        if self._pool:
            observ, reward, terminated, truncated, infos = self._pool.step(actions)
        else:
            results = [env.step(action) for env, action in zip(self._envs, actions)]
            observ, reward, terminated, truncated, infos = zip(*results)
            observ = np.stack(observ)
            reward = np.asarray(reward, np.float32)
            terminated = np.asarray(terminated, bool)
            truncated = np.asarray(truncated, bool)
        if self._check_finite:
            check_values(observ, reward, self.names)
        return observ, reward, terminated, truncated, tuple(infos)

    @_records_errors
    def reset(self, indices=None, options=None):
        """Resets the environments at `indices` (all by default); returns their observations."""
        indices = np.arange(self.num_envs) if indices is None else np.asarray(indices, int)
        seeds = self._seeds.take(indices)
        if self._pool:
            observ = self._pool.reset(indices, seeds, options)
        else:
            observ = np.stack([self._envs[i].reset(seed=seed, options=options)[0]
                               for i, seed in zip(indices, seeds)]) if len(indices) else (
                np.zeros((0,) + self.observation_space.shape, self.observation_space.dtype))
        if self._check_finite and len(indices):
            check_values(observ, None, self.names, indices)
        return observ

    def reseed(self, seed):
        """Seeds environment i again with seed + i at its next reset."""
        self._seeds.reseed(seed)

    @_records_errors
    def call(self, name, *args, **kwargs):
        """Calls method `name` on every environment; returns the results in order."""
        if self._pool:
            return self._pool.call(name, args, kwargs)
        return [getattr(env, name)(*args, **kwargs) for env in self._envs]

    @_records_errors
    def get_attr(self, name):
        """Reads attribute `name` of every environment."""
        if self._pool:
            return self._pool.get_attr(name)
        return [getattr(env, name) for env in self._envs]

    def close(self):
        """Closes every environment and stops the workers in parallel; safe to call again."""
        if self._closed:
            return
        self._closed = True
        if self._pool:
            self._pool.close()
        for env in self._envs:
            env.close()

    def __enter__(self):
        return self

    def __exit__(self, *unused_exc):
        self.close()


@gin.configurable
def make_batch_env(num_envs=gin.REQUIRED, constructor=make_env, num_workers=0, seed=None):
    """A BatchEnv of `num_envs` copies of `constructor` (the gin-bound `make_env`)."""
    if num_workers and constructor is make_env:
        # One env in the parent: a bad env id or binding fails here, plainly,
        # rather than inside every worker.
        constructor().close()
    return BatchEnv([functools.partial(constructor)] * num_envs,
                    num_workers=num_workers, seed=seed)

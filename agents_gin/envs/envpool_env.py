"""EnvPool as a batch env: the ids EnvPool implements, stepped by its C++ thread pool.

Optional (`pip install -e '.[envpool]'`); only this module imports envpool.
`EnvPoolBatchEnv` keeps BatchEnv's contract (step, reset by index, terminated
and truncated apart, env i seeded with seed + i, reseed), so simulate and the
in-graph env take it unchanged. Its episodes differ from gymnasium's (see the
README): EnvPool's own implementations and seeding, and its autoreset, which
never shows here because simulate resets finished envs by index before their
next step; an env stepped after its end without a reset restarts instead (with
reward 0), where a gymnasium env would step on.
"""

import gin
import gymnasium as gym
import numpy as np

from agents_gin.envs.batch_checks import as_action_batch


@gin.configurable(denylist=['constructors', 'num_workers', 'seed'])
class EnvPoolBatchEnv:
    """N environments of one EnvPool id behind BatchEnv's interface."""

    def __init__(self, constructors=None, num_workers=0, seed=None, env_id=None, num_envs=None,
                 max_episode_steps=None, num_threads=0, env_kwargs=None,
                 normalize_actions=False):
        """Builds the pool.

        Args:
          constructors: BatchEnv's first argument; only its length (the number of
            envs) is used, so `EnvPoolBatchEnv([make_env] * n, seed=s)` works
            where a BatchEnv is built. The env id comes from `env_id`.
          num_workers: ignored (EnvPool steps with its own threads, `num_threads`).
          seed: base seed; env i gets seed + i (None: a random base).
          env_id: an EnvPool id such as 'Pendulum-v1', 'HalfCheetah-v5' or
            'Pong-v5'; None takes the `make_env.env_id` binding.
          num_envs: the number of envs when `constructors` is not given.
          max_episode_steps: the episode limit; None takes the
            `make_env.max_episode_steps` binding, else EnvPool's default.
          num_threads: EnvPool's stepping threads (0: one per env, up to the cores).
          env_kwargs: further keyword arguments for `envpool.make`.
          normalize_actions: take actions in [-1, 1] and map them onto a bounded
            Box's range, clipped (as RangeNormalize and ClipAction do).
        """
        envpool = _import_envpool()
        self.num_envs = len(constructors) if constructors is not None else num_envs
        if not self.num_envs or self.num_envs < 1:
            raise ValueError(f'EnvPoolBatchEnv needs at least one environment, got '
                             f'{self.num_envs}')
        self.env_id = env_id or _binding('make_env.env_id')
        if self.env_id not in envpool.list_all_envs():
            raise ValueError(f'EnvPool has no env id {self.env_id!r} (EnvPoolBatchEnv.env_id); '
                             'it provides classic control, MuJoCo (-v4 and -v5) and Atari '
                             "ids such as 'Pendulum-v1', 'HalfCheetah-v5' and 'Pong-v5'")
        self._options = dict(env_kwargs or {})
        limit = max_episode_steps or _binding('make_env.max_episode_steps')
        if limit:
            self._options['max_episode_steps'] = int(limit)
        self._options['num_threads'] = num_threads
        self.max_restarts, self.restarts = 0, 0
        self._pool = None
        self.reseed(np.random.SeedSequence().entropy % 2**31 if seed is None else seed)
        self.observation_space = _gymnasium_space(self._pool.observation_space)
        raw_action_space = _gymnasium_space(self._pool.action_space)
        self._scale = None
        if normalize_actions and isinstance(raw_action_space, gym.spaces.Box):
            low, high = raw_action_space.low, raw_action_space.high
            self._scale = ((high - low) / 2, (high + low) / 2)
            raw_action_space = gym.spaces.Box(-1.0, 1.0, low.shape, np.float32)
        self.action_space = raw_action_space
        self.name = f'envpool:{self.env_id}'
        self.names = [self.name] * self.num_envs
        self._order = np.arange(self.num_envs)

    def __len__(self):
        return self.num_envs

    def step(self, actions):
        """Steps every environment; returns observ, reward, terminated, truncated, infos."""
        actions = self._validate(actions)
        if self._scale is not None:
            actions = np.clip(actions, -1.0, 1.0) * self._scale[0] + self._scale[1]
        observ, reward, terminated, truncated, info = self._pool.step(actions, self._order)
        # EnvPool may answer out of order (its threads finish when they finish).
        order = np.argsort(info['env_id'])
        return (observ[order], reward[order].astype(np.float32, copy=False),
                terminated[order], truncated[order], ({},) * self.num_envs)

    def reset(self, indices=None, options=None):
        """Resets the environments at `indices` (all by default); returns their observations."""
        del options  # EnvPool's reset takes none.
        indices = self._order if indices is None else np.asarray(indices, np.int32)
        if not len(indices):
            return np.zeros((0,) + self.observation_space.shape, self.observation_space.dtype)
        observ, info = self._pool.reset(indices)
        # Answers come in any order: put them in the order asked for.
        position = np.argsort(np.argsort(indices))
        return observ[np.argsort(info['env_id'])][position]

    def reseed(self, seed):
        """Rebuilds the pool so that env i starts again from seed + i at its next reset."""
        if self._pool is not None:
            self._pool.close()
        self._pool = _import_envpool().make(self.env_id, env_type='gymnasium',
                                            num_envs=self.num_envs, seed=int(seed),
                                            **self._options)

    def call(self, name, *args, **kwargs):
        """Not available: EnvPool's envs are C++ objects without Python methods."""
        raise NotImplementedError(f'EnvPoolBatchEnv cannot call {name!r} on its environments; '
                                  'use BatchEnv for that')

    def get_attr(self, name):
        """Not available: EnvPool's envs are C++ objects without Python attributes."""
        raise NotImplementedError(f'EnvPoolBatchEnv cannot read {name!r} of its environments; '
                                  'use BatchEnv for that')

    def close(self):
        """Closes the pool; safe to call more than once."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *unused_exc):
        self.close()

    def _validate(self, actions):
        """Checks count, shape and finiteness; names the first bad environment."""
        actions = as_action_batch(actions, self.num_envs, self.name, self.action_space)
        if actions.dtype.kind == 'f' and not np.isfinite(actions).all():
            index = int(np.flatnonzero(~np.isfinite(actions.reshape(self.num_envs, -1)).all(1))[0])
            raise ValueError(f'Invalid action for environment {index} of {self.num_envs} '
                             f'({self.name}): {actions[index].tolist()} is not finite')
        return actions


def _import_envpool():
    try:
        import envpool
    except ImportError as error:
        raise ImportError("EnvPoolBatchEnv needs envpool: pip install -e '.[envpool]'") from error
    return envpool


def _binding(name):
    """The gin binding `name`, or None when it is not bound."""
    try:
        return gin.query_parameter(name)
    except ValueError:
        return None


def _gymnasium_space(space):
    """EnvPool's gym-style space as the gymnasium space BatchEnv users expect."""
    if isinstance(space, gym.spaces.Space):
        return space
    if hasattr(space, 'n'):
        return gym.spaces.Discrete(int(space.n))
    return gym.spaces.Box(space.low, space.high, space.shape, space.dtype)

"""Gin names for environment wrappers: gymnasium's own, and the few it lacks.

The original Batch PPO's wrappers keep their gin names so that configs read as
before, but where gymnasium has the same transformation it does the work:

- `RangeNormalize` applies gymnasium's `RescaleObservation`, `DtypeObservation`
  and `RescaleAction`;
- `ConvertTo32Bit` applies `DtypeObservation` and `TransformReward`, then
  `CheckFinite`;
- `ActionRepeat` is gymnasium's `RepeatAction` under the original's name.

What gymnasium has no equivalent for is written here: `CheckFinite`,
`FrameHistory` (history with skipped frames), `FrameDelta` and `RandomStart`
(random actions after reset, for any action space).

Every name is a gin configurable, so a wrapper chain is written in a .gin file
as `make_env.wrappers = [@RangeNormalize, @gymnasium.wrappers.ClipAction]`.
"""

import warnings

import gin
import gymnasium as gym
import numpy as np
from absl import logging

# gymnasium's own wrappers, bindable from gin as @gymnasium.wrappers.<Name>.
for _wrapper in (gym.wrappers.TimeLimit, gym.wrappers.ClipAction, gym.wrappers.RescaleAction,
                 gym.wrappers.RescaleObservation, gym.wrappers.FrameStackObservation,
                 gym.wrappers.AtariPreprocessing, gym.wrappers.RecordEpisodeStatistics,
                 gym.wrappers.ClipReward, gym.wrappers.TransformReward,
                 gym.wrappers.FlattenObservation, gym.wrappers.DtypeObservation,
                 gym.wrappers.ReshapeObservation, gym.wrappers.NormalizeObservation,
                 gym.wrappers.RecordVideo):
    gin.external_configurable(_wrapper, module='gymnasium.wrappers')

# Narrower dtypes for observations: TensorFlow graphs run in 32 bits.
_NARROW = {np.dtype(np.float64): np.float32, np.dtype(np.int64): np.int32}


@gin.configurable
class ActionRepeat(gym.wrappers.RepeatAction):
    """gymnasium's RepeatAction under the original's name and argument (`amount`).

    Repeats each action `amount` times, summing rewards, stopping at an episode end.
    """

    def __init__(self, env, amount=2):
        if not isinstance(amount, (int, np.integer)) or amount < 1:
            raise ValueError(f'ActionRepeat.amount must be an integer of at least 1, '
                             f'got {amount!r}')
        super().__init__(env, int(amount))

    @property
    def amount(self):
        """How many times each action is applied."""
        return self.num_repeats


@gin.configurable
def RangeNormalize(env, observ=None, action=None):  # noqa: N802 (the original's gin name)
    """Maps a bounded Box observation and action to [-1, 1] with gymnasium's wrappers.

    Each of `observ` and `action` is tri-state, as in the original: None
    normalises where the bounds are finite and logs otherwise, True insists
    (ValueError on infinite bounds), False leaves that side alone. Normalised
    observations are float32.
    """
    if _wants_rescale('observ', 'observation', env.observation_space, observ):
        space = env.observation_space
        env = gym.wrappers.RescaleObservation(env, *_unit_bounds(space))
        if space.dtype != np.float32:
            env = _narrow(env, np.float32)
    if _wants_rescale('action', 'action', env.action_space, action):
        env = gym.wrappers.RescaleAction(env, *_unit_bounds(env.action_space))
    return env


def _unit_bounds(space):
    """-1 and 1 in the space's shape and dtype (a float64 scalar would warn on casting)."""
    dtype = space.dtype if np.issubdtype(space.dtype, np.floating) else np.float32
    return np.full(space.shape, -1, dtype), np.full(space.shape, 1, dtype)


def _wants_rescale(argument, name, space, wanted):
    """Resolves RangeNormalize's tri-state argument for one space."""
    if wanted is False:
        return False
    finite = (isinstance(space, gym.spaces.Box) and np.isfinite(space.low).all()
              and np.isfinite(space.high).all())
    if wanted and not finite:
        raise ValueError(f'RangeNormalize.{argument} = True needs a Box {name} space with '
                         f'finite bounds, got {space}')
    if not finite:
        logging.info('Not normalizing the %s space %s: its range is not finite.', name, space)
    return finite


@gin.configurable
def ConvertTo32Bit(env):  # noqa: N802 (the original's gin name)
    """float64 observations to float32, int64 to int32, rewards to float32.

    gymnasium's DtypeObservation and TransformReward convert; CheckFinite then
    raises ValueError naming the environment on a non-finite observation or reward.
    """
    space = env.observation_space
    if isinstance(space, gym.spaces.Box) and np.dtype(space.dtype) in _NARROW:
        env = _narrow(env, _NARROW[np.dtype(space.dtype)])
    env = gym.wrappers.TransformReward(env, np.float32)
    return CheckFinite(env)


def _narrow(env, dtype):
    """Applies gymnasium's DtypeObservation without its warning that bounds lose precision.

    Losing precision is what was asked for; the warning would print on every run.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message=".*precision lowered by casting")
        return gym.wrappers.DtypeObservation(env, dtype)


@gin.configurable
class CheckFinite(gym.Wrapper):
    """Raises ValueError on a NaN or infinite observation or reward, naming the env.

    gymnasium's PassiveEnvChecker only warns, and only on the first step.
    """

    def step(self, action):
        """Steps and checks."""
        observ, reward, terminated, truncated, info = self.env.step(action)
        self._check('observation', observ)
        self._check('reward', reward)
        return observ, reward, terminated, truncated, info

    def reset(self, **kwargs):
        """Resets and checks the first observation."""
        observ, info = self.env.reset(**kwargs)
        self._check('observation', observ)
        return observ, info

    def _check(self, what, value):
        value = np.asarray(value)
        if value.dtype.kind == 'f' and not np.isfinite(value).all():
            raise ValueError(f'{self.env} returned a non-finite {what}: {value}')


@gin.configurable
class FrameHistory(gym.ObservationWrapper):
    """Observation = the frames `past_indices` steps ago, stacked (0 is now).

    Unlike gymnasium's FrameStackObservation, the indices may skip frames, e.g.
    (0, 2, 4). Stacked on a new first axis, or concatenated along the first axis
    when `flatten` is set. The first observation of an episode fills the history.
    """

    def __init__(self, env, past_indices=(0, 1), flatten=False):
        super().__init__(env)
        if 0 not in past_indices or min(past_indices) < 0:
            raise ValueError(f'FrameHistory.past_indices must contain 0 and no negative '
                             f'index, got {past_indices}')
        self._indices = np.asarray(past_indices)
        self._capacity = int(self._indices.max()) + 1
        self._flatten = flatten
        self._buffer = None
        self._step = 0
        space = env.observation_space
        low = self._stack(np.repeat(space.low[None], self._capacity, 0), 0)
        high = self._stack(np.repeat(space.high[None], self._capacity, 0), 0)
        self.observation_space = gym.spaces.Box(low, high, dtype=space.dtype)

    def reset(self, **kwargs):
        """Resets and fills the history with the first observation."""
        observ, info = self.env.reset(**kwargs)
        self._buffer = np.repeat(np.asarray(observ)[None], self._capacity, 0)
        self._step = 0
        return self._stack(self._buffer, self._step), info

    def observation(self, observation):
        """Pushes a frame and returns the selected history."""
        self._step += 1
        self._buffer[self._step % self._capacity] = observation
        return self._stack(self._buffer, self._step)

    def _stack(self, buffer, step):
        """Frames at `past_indices` before `step` from the ring buffer."""
        frames = buffer[(step - self._indices) % self._capacity]
        return np.concatenate(frames, 0) if self._flatten else frames


@gin.configurable
class FrameDelta(gym.ObservationWrapper):
    """Observation = change since the last step; the first one is returned raw."""

    def __init__(self, env):
        super().__init__(env)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(
            space.low - space.high, space.high - space.low, dtype=space.dtype)
        self._last = None

    def reset(self, **kwargs):
        """Resets and remembers the first observation."""
        observ, info = self.env.reset(**kwargs)
        self._last = observ
        return observ, info

    def observation(self, observation):
        """Returns the difference to the previous observation."""
        delta = observation - self._last
        self._last = observation
        return delta


@gin.configurable
class RandomStart(gym.Wrapper):
    """Takes 0 to `max_steps` random actions after each reset (uniform count).

    gymnasium's AtariPreprocessing.noop_max does this for Atari's no-op action
    only; this works for any action space.
    """

    def __init__(self, env, max_steps=30):
        super().__init__(env)
        if max_steps < 0:
            raise ValueError(f'RandomStart.max_steps must be at least 0, got {max_steps}')
        self.max_steps = max_steps

    def reset(self, **kwargs):
        """Resets, then plays a random number of random actions."""
        observ, info = self.env.reset(**kwargs)
        if kwargs.get('seed') is not None:
            self.action_space.seed(kwargs['seed'])
        for _ in range(self.np_random.integers(0, self.max_steps + 1)):
            observ, _, terminated, truncated, info = self.env.step(self.action_space.sample())
            if terminated or truncated:
                logging.warning('RandomStart ended an episode; resetting again.')
                kwargs.pop('seed', None)
                return self.reset(**kwargs)
        return observ, info

"""Wrappers of the original Batch PPO that gymnasium lacks; gin names for gymnasium's own.

Each class here is a `gymnasium.Wrapper` and a gin configurable, so a wrapper
chain is written in a .gin file as `make_env.wrappers = [@ClipAction, ...]`.
"""

import gin
import gymnasium as gym
import numpy as np
from absl import logging

# gymnasium's own wrappers, bindable from gin under their usual names.
for _wrapper in (gym.wrappers.TimeLimit, gym.wrappers.ClipAction, gym.wrappers.RescaleAction,
                 gym.wrappers.FrameStackObservation, gym.wrappers.AtariPreprocessing,
                 gym.wrappers.RecordEpisodeStatistics, gym.wrappers.ClipReward,
                 gym.wrappers.TransformReward, gym.wrappers.FlattenObservation,
                 gym.wrappers.DtypeObservation, gym.wrappers.ReshapeObservation):
    gin.external_configurable(_wrapper, module='gymnasium.wrappers')


@gin.configurable
class ActionRepeat(gym.Wrapper):
    """Repeats each action `amount` times, summing rewards, stopping at an episode end."""

    def __init__(self, env, amount=2):
        super().__init__(env)
        if amount < 1:
            raise ValueError(f'ActionRepeat.amount must be at least 1, got {amount}')
        self.amount = amount

    def step(self, action):
        """Steps up to `amount` times with the same action."""
        total = 0.0
        for _ in range(self.amount):
            observ, reward, terminated, truncated, info = self.env.step(action)
            total += reward
            if terminated or truncated:
                break
        return observ, total, terminated, truncated, info


@gin.configurable
class RangeNormalize(gym.Wrapper):
    """Maps a bounded Box observation and action to [-1, 1].

    Each of `observ` and `action` is tri-state, as in the original: None
    normalises where the bounds are finite and logs otherwise, True insists
    (ValueError on infinite bounds), False leaves that side alone.
    """

    def __init__(self, env, observ=None, action=None):
        super().__init__(env)
        self._observ = self._decide('observation', env.observation_space, observ)
        self._action = self._decide('action', env.action_space, action)
        if self._observ:
            self.observation_space = self._unit_box(env.observation_space)
        if self._action:
            self.action_space = self._unit_box(env.action_space)

    def step(self, action):
        """Steps with the action mapped back to the environment's range."""
        if self._action:
            space = self.env.action_space
            action = (np.asarray(action) + 1) / 2 * (space.high - space.low) + space.low
        observ, reward, terminated, truncated, info = self.env.step(action)
        return self._map_observ(observ), reward, terminated, truncated, info

    def reset(self, **kwargs):
        """Resets and normalises the first observation."""
        observ, info = self.env.reset(**kwargs)
        return self._map_observ(observ), info

    def _map_observ(self, observ):
        if not self._observ:
            return observ
        space = self.env.observation_space
        return (2 * (observ - space.low) / (space.high - space.low) - 1).astype(np.float32)

    @staticmethod
    def _decide(name, space, wanted):
        if wanted is False:
            return False
        finite = (isinstance(space, gym.spaces.Box) and np.isfinite(space.low).all()
                  and np.isfinite(space.high).all())
        if wanted and not finite:
            raise ValueError(f'RangeNormalize.{name[:6]}=True needs a finite Box {name} '
                             f'space, got {space}')
        if not finite:
            logging.info('Not normalizing the %s space %s: its range is not finite.',
                         name, space)
        return finite

    @staticmethod
    def _unit_box(space):
        return gym.spaces.Box(-1.0, 1.0, space.shape, np.float32)


@gin.configurable
class ConvertTo32Bit(gym.Wrapper):
    """float64 observations to float32, int64 to int32, rewards to float32.

    A non-finite observation or reward raises ValueError naming the environment.
    """

    _NARROW = {np.dtype(np.float64): np.float32, np.dtype(np.int64): np.int32}

    def __init__(self, env):
        super().__init__(env)
        space = env.observation_space
        self._dtype = self._NARROW.get(np.dtype(space.dtype), None) if isinstance(
            space, gym.spaces.Box) else None
        if self._dtype is not None:
            self.observation_space = gym.spaces.Box(
                space.low.astype(self._dtype), space.high.astype(self._dtype),
                space.shape, self._dtype)

    def step(self, action):
        """Steps and converts."""
        observ, reward, terminated, truncated, info = self.env.step(action)
        return self._convert(observ), self._reward(reward), terminated, truncated, info

    def reset(self, **kwargs):
        """Resets and converts."""
        observ, info = self.env.reset(**kwargs)
        return self._convert(observ), info

    def _convert(self, observ):
        observ = np.asarray(observ)
        if observ.dtype.kind == 'f' and not np.isfinite(observ).all():
            raise ValueError(f'{self.env} returned a non-finite observation: {observ}')
        return observ.astype(self._dtype) if self._dtype is not None else observ

    def _reward(self, reward):
        if not np.isfinite(reward):
            raise ValueError(f'{self.env} returned a non-finite reward: {reward}')
        return np.float32(reward)


@gin.configurable
class FrameHistory(gym.ObservationWrapper):
    """Observation = the frames `past_indices` steps ago, stacked (0 is now).

    Unlike gymnasium's FrameStackObservation, the indices may skip frames, e.g.
    (0, 2, 4). Stacked on a new first axis, or concatenated along the first axis
    when `flatten` is set. The first observation of an episode fills the history.
    """

    def __init__(self, env, past_indices=(0, 1), flatten=False):
        super().__init__(env)
        if 0 not in past_indices:
            raise ValueError(f'FrameHistory.past_indices must contain 0, got {past_indices}')
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
    """Takes 0 to `max_steps` random actions after each reset (uniform count)."""

    def __init__(self, env, max_steps=30):
        super().__init__(env)
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

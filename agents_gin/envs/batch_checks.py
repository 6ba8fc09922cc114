"""Checks on what crosses a batch env: its spaces, each action batch, observations, rewards.

Every failure is a ValueError naming the first bad environment by index and
name. The action check runs on every step, so the common case costs a few
vectorised comparisons; only a failure pays for finding and describing the
culprit.
"""

import gymnasium as gym
import numpy as np


def check_same_spaces(spaces):
    """Raises ValueError naming the first environment whose spaces differ.

    Args:
      spaces: (observation space, action space, name) per environment.
    """
    observation_space, action_space, _ = spaces[0]
    for index, (observ, action, name) in enumerate(spaces):
        if observ != observation_space:
            raise ValueError(f'Environment {index} ({name}) has observation space {observ}, '
                             f'but environment 0 has {observation_space}; all environments '
                             'of a batch must share their spaces')
        if action != action_space:
            raise ValueError(f'Environment {index} ({name}) has action space {action}, but '
                             f'environment 0 has {action_space}; all environments of a batch '
                             'must share their spaces')


def as_action_batch(actions, num_envs, name, space):
    """The actions as an array; raises unless there is one of the space's shape per env."""
    actions = np.asarray(actions)
    if actions.ndim == 0 or actions.shape[0] != num_envs:
        raise ValueError(f'Expected actions for {num_envs} environments, got an array '
                         f'of shape {actions.shape}')
    if actions.shape[1:] != tuple(space.shape):
        raise ValueError(f'Each action of {name} must have shape {space.shape} for '
                         f'{space}, got actions of shape {actions.shape}')
    return actions


class NonFiniteAction(ValueError):
    """An action was NaN or infinite: usually a policy whose weights diverged."""


class ActionCheck:
    """Validates each action batch: count, shape, dtype, finite, inside the space."""

    def __init__(self, space, names, clip):
        """Prepares the checks for one action space.

        Args:
          space: the batch's action space.
          names: one name per environment, for messages.
          clip: clip actions outside a bounded Box instead of raising.
        """
        self.space = space
        self.names = names
        self.clip = clip
        # A Box without any finite bound has nothing to clip to or check against.
        self.bounded = isinstance(space, gym.spaces.Box) and (
            np.isfinite(space.low).any() or np.isfinite(space.high).any())

    def __call__(self, actions):
        """Returns the actions to step with: clipped into a bounded Box when `clip` is on.

        A clipped batch is a new array: the caller keeps its sample to learn from.
        """
        space, num_envs = self.space, len(self.names)
        actions = as_action_batch(actions, num_envs, self.names[0], space)
        if isinstance(space, gym.spaces.Discrete):
            if actions.dtype.kind not in 'iu':
                raise ValueError(f'{self.names[0]} takes integer actions for {space}, got dtype '
                                 f'{actions.dtype}')
            if actions.min() < space.start or actions.max() >= space.start + space.n:
                bad = (actions < space.start) | (actions >= space.start + space.n)
                self._raise_first(bad, actions, f'is outside {space}')
        elif isinstance(space, gym.spaces.Box):
            if actions.dtype.kind != 'f':
                raise ValueError(f'{self.names[0]} takes floating-point actions for {space}, '
                                 f'got dtype {actions.dtype}')
            # One pass covers both checks when bounded: NaN fails every comparison.
            inside = (self.bounded and (actions >= space.low).all()
                      and (actions <= space.high).all())
            if not inside and not self.bounded and np.isfinite(actions).all():
                inside = True
            if not inside:
                flat = actions.reshape(num_envs, -1)
                self._raise_first(~np.isfinite(flat).all(1), actions, 'is not finite',
                                  NonFiniteAction)
                if self.clip:
                    return np.clip(actions, space.low, space.high).astype(actions.dtype,
                                                                          copy=False)
                bad = ((flat < space.low.reshape(-1)) | (flat > space.high.reshape(-1))).any(1)
                self._raise_first(bad, actions, f'is outside {space} (BatchEnv.clip_actions '
                                  'is False)')
        return actions

    def _raise_first(self, bad, actions, what, error=ValueError):
        """Raises `error` naming the first environment flagged in `bad`, if any."""
        if not np.any(bad):
            return
        index = int(np.flatnonzero(bad)[0])
        raise error(f'Invalid action for environment {index} of {len(self.names)} '
                    f'({self.names[index]}): {actions[index].tolist()} {what}')


def check_values(observ, reward, names, indices=None):
    """Raises ValueError naming the first env with a non-finite observation or reward.

    Args:
      observ: observations [M, ...] of the environments at `indices`.
      reward: rewards [M], or None after a reset.
      names: one name per environment of the batch.
      indices: the batch indices of the M rows; None for all, in order.
    """
    if observ.dtype.kind == 'f' and not np.isfinite(observ).all():
        position = int(np.flatnonzero(~np.isfinite(observ.reshape(len(observ), -1)).all(1))[0])
        index = position if indices is None else int(indices[position])
        raise ValueError(f'Environment {index} ({names[index]}) returned a non-finite '
                         f'observation: {observ[position]!r}')
    if reward is not None and not np.isfinite(reward).all():
        index = int(np.flatnonzero(~np.isfinite(reward))[0])
        raise ValueError(f'Environment {index} ({names[index]}) returned a non-finite '
                         f'reward: {reward[index]}')

"""Environments for tests and fault injection: exact episode lengths, real failures.

`MockEnv` plays episodes of known lengths so that tests can pin the exact
boundaries the simulate loop produces. `FaultyEnv` fails for real at a chosen
moment: raising, hanging, exiting, or killing its own process.
"""

import os
import signal
import time

import gin
import gymnasium as gym
import numpy as np


@gin.configurable
class MockEnv(gym.Env):
    """Episodes of the given lengths, cycled; observation = [step in episode, env tag].

    The reward of every step is 1 plus `tag`, so a score is known exactly. An
    episode ends as `terminated`, or as `truncated` when `truncate` is set.
    Stepping an ended episode raises, so a test sees any missed reset.
    """

    def __init__(self, lengths=(5,), tag=0.0, truncate=False, discrete=False,
                 observ_shape=(2,)):
        self.lengths = list(lengths)
        self.tag = float(tag)
        self.truncate = truncate
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, observ_shape, np.float32)
        if discrete:
            self.action_space = gym.spaces.Discrete(3)
        else:
            self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.episode_steps = []  # Steps taken in each episode so far.
        self._length = None

    def reset(self, *, seed=None, options=None):
        """Starts the next episode of the cycle."""
        super().reset(seed=seed)
        self._length = self.lengths[len(self.episode_steps) % len(self.lengths)]
        self.episode_steps.append(0)
        return self._observ(), {}

    def step(self, action):
        """Advances one step; raises if the episode already ended."""
        if self._length is None or self.episode_steps[-1] >= self._length:
            raise RuntimeError('MockEnv stepped without a reset after its episode ended')
        self.episode_steps[-1] += 1
        ended = self.episode_steps[-1] >= self._length
        return (self._observ(), 1.0 + self.tag, ended and not self.truncate,
                ended and self.truncate, {})

    def _observ(self):
        observ = np.zeros(self.observation_space.shape, np.float32)
        observ.flat[0] = self.episode_steps[-1]
        if observ.size > 1:
            observ.flat[1] = self.tag
        return observ


@gin.configurable
class GinTaggedEnv(MockEnv):
    """A MockEnv whose tag comes only from gin, to show bindings reach workers."""

    def __init__(self, tag=0.0):
        super().__init__(lengths=(3,), tag=tag)


class FaultyEnv(MockEnv):
    """Fails for real on a chosen call (`construct`, `reset` or `step`) at step `at`.

    Modes: `raise` (ValueError), `raise_custom` (an exception whose class needs
    two arguments), `hang` (sleeps), `hang_hard` (sleeps, ignoring SIGTERM),
    `exit` (os._exit(3)) and `kill` (SIGKILL to itself).
    """

    def __init__(self, fail_on='step', at=3, mode='raise', lengths=(100,)):
        self.fail_on, self.at, self.mode = fail_on, at, mode
        self.steps = 0
        if fail_on == 'construct':
            self._fail()
        super().__init__(lengths=lengths)

    def reset(self, *, seed=None, options=None):
        """Resets, failing here if so asked."""
        if self.fail_on == 'reset':
            self._fail()
        return super().reset(seed=seed, options=options)

    def step(self, action):
        """Steps, failing at step `at` if so asked."""
        self.steps += 1
        if self.fail_on == 'step' and self.steps == self.at:
            self._fail()
        return super().step(action)

    def _fail(self):
        if self.mode == 'raise':
            raise ValueError(f'injected failure in {self.fail_on}')
        if self.mode == 'raise_custom':
            raise TwoArgumentError('injected', 42)
        if self.mode == 'hang_hard':
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if self.mode in ('hang', 'hang_hard'):
            time.sleep(3600)
        if self.mode == 'exit':
            os._exit(3)
        if self.mode == 'kill':
            os.kill(os.getpid(), signal.SIGKILL)


class TwoArgumentError(Exception):
    """An exception that plain pickling cannot rebuild."""

    def __init__(self, what, code):
        super().__init__(f'{what} (code {code})')
        self.what, self.code = what, code

"""Environments for tests and fault injection: exact episode lengths, real failures.

`MockEnv` plays episodes of known lengths so that tests can pin the exact
boundaries the simulate loop produces. `FaultyEnv` fails for real at a chosen
moment: raising, hanging, exiting, or killing its own process.
`CrashingPendulum`, registered as 'agents_gin/CrashingPendulum-v0', is
Pendulum-v1 whose worker process dies at random, seeded moments, for training
runs that exercise the restart policy (`make_env.env_id`, `make_env.env_kwargs`).
"""

import os
import signal
import time

import gin
import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from agents_gin.envs import worker

CRASHING_PENDULUM_ID = 'agents_gin/CrashingPendulum-v0'


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
    """Fails for real on a chosen call (`construct`, `reset` or `step`).

    It fails at step `at` (counted over the env's life) or at reset number
    `reset_at`. Modes: `raise` (ValueError), `raise_custom` (an exception whose
    class needs two arguments), `hang` (sleeps), `hang_hard` (sleeps, ignoring
    SIGTERM), `exit` (os._exit(3)) and `kill` (SIGKILL to itself). With `once`
    (a file path) it fails only if that file does not exist yet, and creates
    it first: one failure across all the processes that rebuild it.
    """

    def __init__(self, fail_on='step', at=3, mode='raise', lengths=(100,), reset_at=1,
                 once=None):
        self.fail_on, self.at, self.mode = fail_on, at, mode
        self.reset_at, self.once = reset_at, once
        self.steps = 0
        self.resets = 0
        if fail_on == 'construct':
            self._fail()
        super().__init__(lengths=lengths)

    def reset(self, *, seed=None, options=None):
        """Resets, failing at reset number `reset_at` if so asked."""
        self.resets += 1
        if self.fail_on == 'reset' and self.resets == self.reset_at:
            self._fail()
        return super().reset(seed=seed, options=options)

    def step(self, action):
        """Steps, failing at step `at` if so asked."""
        self.steps += 1
        if self.fail_on == 'step' and self.steps == self.at:
            self._fail()
        return super().step(action)

    def _fail(self):
        if self.once is not None:
            if os.path.exists(self.once):
                return
            open(self.once, 'w').close()
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


class CrashingPendulum(PendulumEnv):
    """Pendulum-v1 whose process dies at random, seeded steps or resets.

    It crashes only inside an environment worker's process: anywhere else,
    such as a test runner or a trainer stepping it in-process, it behaves as
    Pendulum-v1, so a misplaced copy never kills the caller.

    The crash draws come from a generator seeded by `seed` and the seed of the
    first seeded reset in the process (BatchEnv gives every env and every
    restart its own), or by the process id when no reset is seeded.
    """

    def __init__(self, crash_probability=0.01, reset_crash_probability=0.0, seed=0,
                 mode='exit', exit_code=3, **kwargs):
        """Makes the pendulum.

        Args:
          crash_probability: chance per step that the process dies.
          reset_crash_probability: chance per reset that the process dies.
          seed: seeds the crash draws (with the first reset's seed).
          mode: how the process dies: 'exit' (os._exit(exit_code)), 'kill'
            (SIGKILL to itself) or 'segv' (SIGSEGV to itself, a fatal signal
            that leaves a Python stack dump).
          exit_code: the exit status for mode 'exit'.
          **kwargs: for PendulumEnv (render_mode, g).
        """
        if mode not in ('exit', 'kill', 'segv'):
            raise ValueError(f"CrashingPendulum mode must be 'exit', 'kill' or 'segv', got "
                             f'{mode!r}')
        for name, value in (('crash_probability', crash_probability),
                            ('reset_crash_probability', reset_crash_probability)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'CrashingPendulum {name} must be in [0, 1], got {value}')
        super().__init__(**kwargs)
        self.crash_probability = crash_probability
        self.reset_crash_probability = reset_crash_probability
        self.crash_seed, self.mode, self.exit_code = seed, mode, exit_code
        self._crash_rng = None

    def reset(self, *, seed=None, options=None):
        """Resets, first drawing whether the process dies now."""
        if self._crash_rng is None:
            self._crash_rng = np.random.default_rng(
                [self.crash_seed, seed if seed is not None else os.getpid()])
        self._maybe_crash(self.reset_crash_probability)
        return super().reset(seed=seed, options=options)

    def step(self, action):
        """Steps, first drawing whether the process dies now."""
        self._maybe_crash(self.crash_probability)
        return super().step(action)

    def _maybe_crash(self, probability):
        if self._crash_rng is None or not probability:
            return
        if self._crash_rng.random() >= probability or not worker.in_worker_process():
            return
        if self.mode == 'exit':
            os._exit(self.exit_code)
        os.kill(os.getpid(), signal.SIGKILL if self.mode == 'kill' else signal.SIGSEGV)
        time.sleep(10)  # The signal arrives at once; never step on.


if CRASHING_PENDULUM_ID not in gym.registry:
    gym.register(id=CRASHING_PENDULUM_ID, entry_point=CrashingPendulum, max_episode_steps=200)

"""N environments stepped as one batch, in this process or over K worker processes.

Which is faster depends on the machine: a process round trip costs ~60 us, more
than a light environment's step, so on few cores in-process stepping wins; with
many cores and heavy environments, workers scale. `num_workers` picks (see the
README's benchmark table). `terminated` and `truncated` stay apart.
"""

import functools

import gin
import gymnasium as gym
import numpy as np
from absl import logging

from agents_gin.envs import errors
from agents_gin.envs.factory import make_env
from agents_gin.envs.worker import EnvWorker, env_name, receive_all


# The framework passes these (train.num_envs, train.num_workers, train.seed).
@gin.configurable(denylist=['constructors', 'num_workers', 'seed'])
class BatchEnv:
    """Steps a batch of environments; resets by index; validates every action batch."""

    def __init__(self, constructors, num_workers=0, max_restarts=0, seed=None,
                 check_finite=True):
        """Builds the environments.

        Args:
          constructors: one callable per environment (cloudpickled for workers).
          num_workers: 0 steps in this process; K > 0 spreads the envs over K
            worker processes, each stepping its group in one round trip.
          max_restarts: how many dead or hung workers to rebuild before giving
            up; a rebuilt worker's episodes end as truncated.
          seed: base seed; environment i is seeded with seed + i at its first reset.
          check_finite: raise on a non-finite observation or reward.
        """
        self._constructors = list(constructors)
        self.num_envs = len(self._constructors)
        if self.num_envs < 1:
            raise ValueError('BatchEnv needs at least one environment constructor')
        if num_workers > self.num_envs:
            raise ValueError(f'BatchEnv.num_workers={num_workers} exceeds the number of '
                             f'environments ({self.num_envs}); use at most that many')
        self.max_restarts = max_restarts
        self.restarts = 0
        self._seed = seed
        self._check_finite = check_finite
        self._seeded = np.zeros(self.num_envs, bool)
        self._closed = False
        self._envs, self._workers = [], []
        if num_workers:
            self._groups = [group.tolist() for group in
                            np.array_split(np.arange(self.num_envs), num_workers)]
            self._workers = [None] * num_workers
            try:
                for index in range(num_workers):
                    self._start_worker(index)
            except BaseException:
                self.close()
                raise
            spaces = [space for worker in self._workers for space in worker.spaces]
        else:
            self._envs = [constructor() for constructor in self._constructors]
            spaces = [(env.observation_space, env.action_space, env_name(env))
                      for env in self._envs]
        self.observation_space, self.action_space, self.name = spaces[0]
        self.names = [name for _, _, name in spaces]
        _check_same_spaces(spaces)
        self._bounded = isinstance(self.action_space, gym.spaces.Box) and (
            np.isfinite(self.action_space.low).any() or np.isfinite(self.action_space.high).any())

    def __len__(self):
        return self.num_envs

    def step(self, actions):
        """Steps every environment with its action.

        Returns:
          observ [N, ...], reward [N] float32, terminated [N] bool, truncated [N]
          bool, and a tuple of N info dicts.
        """
        actions = self._validate(actions)
        if self._workers:
            observ, reward, terminated, truncated, infos = self._step_workers(actions)
        else:
            results = [env.step(action) for env, action in zip(self._envs, actions)]
            observ, reward, terminated, truncated, infos = zip(*results)
            observ = np.stack(observ)
            reward = np.asarray(reward, np.float32)
            terminated = np.asarray(terminated, bool)
            truncated = np.asarray(truncated, bool)
        if self._check_finite:
            self._check_values(observ, reward)
        return observ, reward, terminated, truncated, tuple(infos)

    def reset(self, indices=None, options=None):
        """Resets the environments at `indices` (all by default); returns their observations."""
        indices = np.arange(self.num_envs) if indices is None else np.asarray(indices, int)
        seeds = self._take_seeds(indices)
        if self._workers:
            observ = self._reset_workers(indices, seeds, options)
        else:
            observ = np.stack([self._envs[i].reset(seed=seed, options=options)[0]
                               for i, seed in zip(indices, seeds)]) if len(indices) else (
                np.zeros((0,) + self.observation_space.shape, self.observation_space.dtype))
        if self._check_finite and len(indices):
            self._check_values(observ, None, indices)
        return observ

    def reseed(self, seed):
        """Seeds environment i again with seed + i at its next reset."""
        self._seed = seed
        self._seeded[:] = False

    def call(self, name, *args, **kwargs):
        """Calls method `name` on every environment; returns the results in order."""
        if not self._workers:
            return [getattr(env, name)(*args, **kwargs) for env in self._envs]
        results = self._request_all('call', lambda group: (
            name, args, kwargs, list(range(len(group)))))
        return [item for result in results for item in result]

    def get_attr(self, name):
        """Reads attribute `name` of every environment."""
        if not self._workers:
            return [getattr(env, name) for env in self._envs]
        results = self._request_all('getattr', lambda group: (name, list(range(len(group)))))
        return [item for result in results for item in result]

    def close(self):
        """Closes every environment and worker; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        for worker in self._workers:
            if worker is not None:
                worker.close()
        for env in self._envs:
            env.close()

    def __enter__(self):
        return self

    def __exit__(self, *unused_exc):
        self.close()

    # --------------------------------------------------------------------------

    def _validate(self, actions):
        """Checks count, shape, dtype, finiteness and bounds; names the bad env.

        This runs on every step, so the common case costs a few vectorised
        comparisons; only a failure pays for finding and describing the culprit.
        """
        actions = np.asarray(actions)
        space = self.action_space
        if actions.ndim == 0 or actions.shape[0] != self.num_envs:
            raise ValueError(f'Expected actions for {self.num_envs} environments, got an array '
                             f'of shape {actions.shape}')
        if actions.shape[1:] != tuple(space.shape):
            raise ValueError(f'Each action of {self.name} must have shape {space.shape} for '
                             f'{space}, got actions of shape {actions.shape}')
        if isinstance(space, gym.spaces.Discrete):
            if actions.dtype.kind not in 'iu':
                raise ValueError(f'{self.name} takes integer actions for {space}, got dtype '
                                 f'{actions.dtype}')
            if actions.min() < space.start or actions.max() >= space.start + space.n:
                bad = (actions < space.start) | (actions >= space.start + space.n)
                self._raise_first(bad, actions, f'is outside {space}')
        elif isinstance(space, gym.spaces.Box):
            if actions.dtype.kind != 'f':
                raise ValueError(f'{self.name} takes floating-point actions for {space}, got '
                                 f'dtype {actions.dtype}')
            # One pass covers both checks when bounded: NaN fails every comparison.
            inside = (self._bounded and (actions >= space.low).all()
                      and (actions <= space.high).all())
            if not inside and not self._bounded and np.isfinite(actions).all():
                inside = True
            if not inside:
                flat = actions.reshape(self.num_envs, -1)
                self._raise_first(~np.isfinite(flat).all(1), actions, 'is not finite')
                bad = ((flat < space.low.reshape(-1)) | (flat > space.high.reshape(-1))).any(1)
                self._raise_first(bad, actions, f'is outside {space}')
        return actions

    def _raise_first(self, bad, actions, what):
        if not np.any(bad):
            return
        index = int(np.flatnonzero(bad)[0])
        raise ValueError(f'Invalid action for environment {index} of {self.num_envs} '
                         f'({self.names[index]}): {actions[index].tolist()} {what}')

    def _check_values(self, observ, reward, indices=None):
        """Raises ValueError naming the first env with a non-finite observation or reward."""
        if observ.dtype.kind == 'f' and not np.isfinite(observ).all():
            position = int(np.flatnonzero(~np.isfinite(observ.reshape(len(observ), -1)).all(1))[0])
            index = position if indices is None else int(indices[position])
            raise ValueError(f'Environment {index} ({self.names[index]}) returned a non-finite '
                             f'observation: {observ[position]!r}')
        if reward is not None and not np.isfinite(reward).all():
            index = int(np.flatnonzero(~np.isfinite(reward))[0])
            raise ValueError(f'Environment {index} ({self.names[index]}) returned a non-finite '
                             f'reward: {reward[index]}')

    def _take_seeds(self, indices):
        """Seeds each environment once, at its first reset, with seed + index."""
        if self._seed is None:
            return [None] * len(indices)
        seeds = [None if self._seeded[i] else self._seed + int(i) for i in indices]
        self._seeded[indices] = True
        return seeds

    def _start_worker(self, index):
        group = self._groups[index]
        self._workers[index] = EnvWorker(
            [self._constructors[i] for i in group], worker_index=index, env_indices=group)

    def _step_workers(self, actions):
        sequences = [worker.send('step', actions[group])
                     for worker, group in zip(self._workers, self._groups)]
        results = receive_all(self._workers, sequences, 'step')
        observ = np.empty((self.num_envs,) + self.observation_space.shape,
                          self.observation_space.dtype)
        reward = np.zeros(self.num_envs, np.float32)
        terminated = np.zeros(self.num_envs, bool)
        truncated = np.zeros(self.num_envs, bool)
        infos = [{}] * self.num_envs
        for index, (worker, group, result) in enumerate(
                zip(self._workers, self._groups, results)):
            if isinstance(result, errors.EnvWorkerError):
                observ[group] = self._restart(index, result)
                truncated[group] = True
                for i in group:
                    infos[i] = {'worker_restarted': True}
                continue
            group_observ, reward[group], terminated[group], truncated[group], group_infos = (
                result)
            observ[group] = worker.read_observ() if group_observ is None else group_observ
            for i, info in zip(group, group_infos or ()):
                infos[i] = info
        return observ, reward, terminated, truncated, infos

    def _reset_workers(self, indices, seeds, options):
        observ = np.empty((len(indices),) + self.observation_space.shape,
                          self.observation_space.dtype)
        position = {int(i): p for p, i in enumerate(indices)}
        busy, sequences, locals_ = [], [], []
        for worker, group in zip(self._workers, self._groups):
            local = [k for k, i in enumerate(group) if i in position]
            if local:
                group_seeds = [seeds[position[group[k]]] for k in local]
                sequences.append(worker.send('reset', (local, group_seeds, options)))
                busy.append((worker, group))
                locals_.append(local)
        results = receive_all([worker for worker, _ in busy], sequences, 'reset')
        for (worker, group), local, result in zip(busy, locals_, results):
            if isinstance(result, errors.EnvWorkerError):
                raise result
            group_observ, _ = result
            if group_observ is None:
                group_observ = worker.read_observ(local)
            for k, ob in zip(local, group_observ):
                observ[position[group[k]]] = ob
        return observ

    def _request_all(self, command, make_args):
        sequences = [worker.send(command, make_args(group))
                     for worker, group in zip(self._workers, self._groups)]
        results = receive_all(self._workers, sequences, command)
        for result in results:
            if isinstance(result, errors.EnvWorkerError):
                raise result
        return results

    def _restart(self, index, error):
        """Rebuilds a dead or hung worker (within the budget); returns its reset observations."""
        if not isinstance(error, (errors.EnvWorkerCrashed, errors.EnvWorkerTimeout)):
            raise error
        if self.restarts >= self.max_restarts:
            if self.max_restarts:
                raise errors.EnvWorkerError(
                    f'gave up after {self.restarts} worker restarts (BatchEnv.max_restarts)',
                    error.worker_index, error.env_indices, error.pid, error.command) from error
            raise error
        self.restarts += 1
        logging.warning('Restarting environment worker %d (restart %d of %d): %s',
                        index, self.restarts, self.max_restarts, error)
        self._workers[index].close()
        self._start_worker(index)
        group = self._groups[index]
        self._seeded[group] = False
        seeds = self._take_seeds(np.asarray(group))
        if self._seed is not None:
            seeds = [s + self.num_envs * self.restarts for s in seeds]
        observ, _ = self._workers[index].request(
            'reset', (list(range(len(group))), seeds, None))
        return self._workers[index].read_observ() if observ is None else observ


@gin.configurable
def make_batch_env(num_envs=gin.REQUIRED, constructor=make_env, num_workers=0, seed=None):
    """A BatchEnv of `num_envs` copies of `constructor` (the gin-bound `make_env`)."""
    if num_workers and constructor is make_env:
        # One env in the parent: a bad env id or binding fails here, plainly,
        # rather than inside every worker.
        constructor().close()
    return BatchEnv([functools.partial(constructor)] * num_envs,
                    num_workers=num_workers, seed=seed)


def _check_same_spaces(spaces):
    """Raises ValueError naming the first environment whose spaces differ."""
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

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
from agents_gin.envs.worker import EnvWorker, close_workers, env_name, receive_all


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
        self._constructors = list(constructors)
        self.num_envs = len(self._constructors)
        if self.num_envs < 1:
            raise ValueError('BatchEnv needs at least one environment constructor')
        if num_workers > self.num_envs:
            raise ValueError(f'BatchEnv.num_workers={num_workers} exceeds the number of '
                             f'environments ({self.num_envs}); use at most that many')
        if max_restarts < 0:
            raise ValueError(f'BatchEnv.max_restarts must be 0 or more, got {max_restarts}')
        self.max_restarts = max_restarts
        self.restarts = 0
        self.last_error = None
        self._seed = seed
        self._check_finite = check_finite
        self._clip_actions = clip_actions
        self._seeded = np.zeros(self.num_envs, bool)
        # Envs whose worker was rebuilt mid-episode: the next step truncates them.
        self._lost = np.zeros(self.num_envs, bool)
        self._last_observ = None
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
        if num_workers and max_restarts:
            # The last real observation of each env, returned when its worker dies.
            self._last_observ = np.zeros((self.num_envs,) + self.observation_space.shape,
                                         self.observation_space.dtype)

    def __len__(self):
        return self.num_envs

    @_records_errors
    def step(self, actions):
        """Steps every environment with its action.

        Returns:
          observ [N, ...], reward [N] float32, terminated [N] bool, truncated [N]
          bool, and a tuple of N info dicts. An env whose worker was restarted
          returns its previous observation, reward 0, truncated True and the
          info {'worker_restarted': True}.
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

    @_records_errors
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

    @_records_errors
    def call(self, name, *args, **kwargs):
        """Calls method `name` on every environment; returns the results in order."""
        if not self._workers:
            return [getattr(env, name)(*args, **kwargs) for env in self._envs]
        results = self._request_all('call', lambda group: (
            name, args, kwargs, list(range(len(group)))))
        return [item for result in results for item in result]

    @_records_errors
    def get_attr(self, name):
        """Reads attribute `name` of every environment."""
        if not self._workers:
            return [getattr(env, name) for env in self._envs]
        results = self._request_all('getattr', lambda group: (name, list(range(len(group)))))
        return [item for result in results for item in result]

    def close(self):
        """Closes every environment and stops the workers in parallel; safe to call again."""
        if self._closed:
            return
        self._closed = True
        close_workers([worker for worker in self._workers if worker is not None])
        for env in self._envs:
            env.close()

    def __enter__(self):
        return self

    def __exit__(self, *unused_exc):
        self.close()

    # --------------------------------------------------------------------------

    def _validate(self, actions):
        """Checks count, shape, dtype, finiteness and bounds; names the bad env.

        Returns the actions to step with: clipped into a bounded Box when
        `clip_actions` is on (a new array; the caller's is not touched). This
        runs on every step, so the common case costs a few vectorised
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
                if self._clip_actions:
                    # A new array: the caller keeps its sample to learn from.
                    return np.clip(actions, space.low, space.high).astype(actions.dtype,
                                                                          copy=False)
                bad = ((flat < space.low.reshape(-1)) | (flat > space.high.reshape(-1))).any(1)
                self._raise_first(bad, actions, f'is outside {space} (BatchEnv.clip_actions '
                                  'is False)')
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

    def _exchange(self, command, args):
        """Sends `args[k]` to worker k for each k in `args`; waits for all replies.

        Returns {worker index: result, or the EnvWorkerError of a worker that
        failed}, failures to send included (a worker that died while idle).
        """
        results, sent, sequences = {}, [], []
        for index, worker_args in args.items():
            try:
                sequences.append(self._workers[index].send(command, worker_args))
                sent.append(index)
            except errors.EnvWorkerError as error:
                results[index] = error
        if sent:
            replies = receive_all([self._workers[i] for i in sent], sequences, command)
            results.update(zip(sent, replies))
        return results

    def _recover(self, results):
        """Restarts the workers that died or hung; returns their indices.

        Any other failure (an exception inside an environment) is raised first,
        so that a bug is not hidden behind restarts.
        """
        failed = {i: r for i, r in results.items() if isinstance(r, errors.EnvWorkerError)}
        for error in failed.values():
            if not _restartable(error):
                raise error
        for index in sorted(failed):
            self._restart(index, failed[index])
        return sorted(failed)

    def _step_workers(self, actions):
        results = self._exchange('step', {index: actions[group]
                                          for index, group in enumerate(self._groups)})
        restarted = self._recover(results)
        observ = np.empty((self.num_envs,) + self.observation_space.shape,
                          self.observation_space.dtype)
        reward = np.zeros(self.num_envs, np.float32)
        terminated = np.zeros(self.num_envs, bool)
        truncated = np.zeros(self.num_envs, bool)
        infos = [{}] * self.num_envs
        for index, (worker, group) in enumerate(zip(self._workers, self._groups)):
            if index in restarted:
                continue  # Filled in below from the last real observations.
            group_observ, reward[group], terminated[group], truncated[group], group_infos = (
                results[index])
            observ[group] = worker.read_observ() if group_observ is None else group_observ
            for i, info in zip(group, group_infos or ()):
                infos[i] = info
        if self._last_observ is not None:
            lost = self._lost
            if lost.any():
                # Their episodes end here, at the last observation they really had.
                observ[lost] = self._last_observ[lost]
                reward[lost], terminated[lost], truncated[lost] = 0.0, False, True
                for i in np.flatnonzero(lost):
                    infos[i] = {'worker_restarted': True}
                lost[:] = False
            self._last_observ[:] = observ
        return observ, reward, terminated, truncated, infos

    def _reset_workers(self, indices, seeds, options):
        observ = np.empty((len(indices),) + self.observation_space.shape,
                          self.observation_space.dtype)
        position = {int(i): p for p, i in enumerate(indices)}
        pending = {}
        for index, group in enumerate(self._groups):
            local = [k for k, i in enumerate(group) if i in position]
            if local:
                pending[index] = (local, [seeds[position[group[k]]] for k in local], options)
        while pending:
            results = self._exchange('reset', pending)
            restarted = self._recover(results)
            for index, (local, _, _) in pending.items():
                if index in restarted:
                    continue
                group_observ, _ = results[index]
                if group_observ is None:
                    group_observ = self._workers[index].read_observ(local)
                for k, ob in zip(local, group_observ):
                    observ[position[self._groups[index][k]]] = ob
            # A reset cut short by a death runs again on the rebuilt worker.
            pending = {index: pending[index] for index in restarted}
        self._lost[indices] = False
        if self._last_observ is not None and len(indices):
            self._last_observ[indices] = observ
        return observ

    def _request_all(self, command, make_args):
        """Sends one request to every worker; retries on a worker that was restarted."""
        pending = {index: make_args(group) for index, group in enumerate(self._groups)}
        results = {}
        while pending:
            replies = self._exchange(command, pending)
            restarted = self._recover(replies)
            results.update({i: r for i, r in replies.items() if i not in restarted})
            pending = {index: pending[index] for index in restarted}
        return [results[index] for index in range(len(self._workers))]

    def _restart(self, index, error):
        """Rebuilds a dead or hung worker within the budget and resets its envs.

        The envs are reset at once, so that the worker is ready for the next
        step whatever the caller does, and marked lost: the next step ends
        their episodes as truncated. A rebuilt worker that fails again counts
        as another restart.
        """
        group = self._groups[index]
        while True:
            if not self.max_restarts:
                raise error
            if self.restarts >= self.max_restarts:
                raise errors.RestartLimitExceeded(
                    error, self.restarts, self.max_restarts) from error
            self.restarts += 1
            logging.warning(
                'Environment worker %d (pid %s, envs %s) %s; restarting it (restart %d of %d, '
                'BatchEnv.max_restarts); its episodes end as truncated.',
                index, error.pid, list(group), _what_happened(error), self.restarts,
                self.max_restarts)
            self._workers[index].close()
            try:
                self._start_worker(index)
                seeds = None
                if self._seed is not None:
                    seeds = [self._seed + i + self.num_envs * self.restarts for i in group]
                self._workers[index].request('reset', (list(range(len(group))), seeds, None))
            except (errors.EnvWorkerCrashed, errors.EnvWorkerTimeout) as new_error:
                error = new_error
                continue
            self._seeded[group] = True
            self._lost[group] = True
            return


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


def _restartable(error):
    """Whether a worker failure is a death or a hang (a restart may help)."""
    return isinstance(error, (errors.EnvWorkerCrashed, errors.EnvWorkerTimeout))


def _what_happened(error):
    """'died during step: killed by SIGKILL', or 'did not answer within 60 s during step'."""
    if isinstance(error, errors.EnvWorkerCrashed):
        return f'died during {error.command}: {errors.describe_exit(error.exitcode)}'
    return f'did not answer within {error.timeout:g} s during {error.command}'

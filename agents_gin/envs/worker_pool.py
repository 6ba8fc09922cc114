"""A batch env's worker processes: one request per group, and the restart policy.

N environments are split into K contiguous groups, one EnvWorker each. A
request goes to every worker at once and waits for all replies together
(`receive_all`), so a death anywhere is seen at once. A worker that died or
hung, at any moment (stepping, resetting, idle), is rebuilt while the budget
`max_restarts` allows and its environments are reset at once; the next step
ends their episodes as truncated at their last real observation (reward 0,
info {'worker_restarted': True}). An interrupted reset or call runs again on
the rebuilt worker. Any other failure (an exception inside an environment) is
raised as it is, so that a bug is not hidden behind restarts.
"""

import numpy as np
from absl import logging

from agents_gin.envs import errors
from agents_gin.envs.batch_checks import check_same_spaces
from agents_gin.envs.worker import EnvWorker, close_workers, receive_all


class WorkerPool:
    """K EnvWorkers serving N environments in contiguous groups; rebuilds those that fail."""

    def __init__(self, constructors, num_workers, max_restarts, seeds):
        """Starts the workers (stopping them all if one fails) and checks their spaces.

        Args:
          constructors: one callable per environment (cloudpickled for the workers).
          num_workers: K, at most the number of environments.
          max_restarts: restarts allowed in all; 0 raises the first failure.
          seeds: the batch's EnvSeeds; a rebuilt worker's envs take theirs from it.
        """
        self._constructors = constructors
        self.num_envs = len(constructors)
        self.max_restarts = max_restarts
        self.restarts = 0
        self._seeds = seeds
        self.groups = [group.tolist() for group in
                       np.array_split(np.arange(self.num_envs), num_workers)]
        self.workers = [None] * num_workers
        try:
            for index in range(num_workers):
                self._start_worker(index)
        except BaseException:
            self.close()
            raise
        self.spaces = [space for worker in self.workers for space in worker.spaces]
        check_same_spaces(self.spaces)
        self._observation_space = self.spaces[0][0]
        # Envs whose worker was rebuilt mid-episode: the next step truncates them.
        self._lost = np.zeros(self.num_envs, bool)
        # The last real observation of each env, returned when its worker dies.
        self._last_observ = np.zeros(
            (self.num_envs,) + self._observation_space.shape,
            self._observation_space.dtype) if max_restarts else None

    def step(self, actions):
        """Steps every group with its actions: observ, reward, terminated, truncated, infos."""
        results = self._exchange('step', {index: actions[group]
                                          for index, group in enumerate(self.groups)})
        restarted = self._recover(results)
        observ = self._empty_observ(self.num_envs)
        reward = np.zeros(self.num_envs, np.float32)
        terminated = np.zeros(self.num_envs, bool)
        truncated = np.zeros(self.num_envs, bool)
        infos = [{}] * self.num_envs
        for index, (worker, group) in enumerate(zip(self.workers, self.groups)):
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

    def reset(self, indices, seeds, options):
        """Resets the envs at `indices`, seeds[k] for indices[k]; returns their observations."""
        observ = self._empty_observ(len(indices))
        position = {int(i): p for p, i in enumerate(indices)}
        pending = {}
        for index, group in enumerate(self.groups):
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
                    group_observ = self.workers[index].read_observ(local)
                for k, ob in zip(local, group_observ):
                    observ[position[self.groups[index][k]]] = ob
            # A reset cut short by a death runs again on the rebuilt worker.
            pending = {index: pending[index] for index in restarted}
        self._lost[indices] = False
        if self._last_observ is not None and len(indices):
            self._last_observ[indices] = observ
        return observ

    def call(self, name, args, kwargs):
        """Calls method `name` on every environment; returns the results in order."""
        return self._request_all('call', lambda group: (
            name, args, kwargs, list(range(len(group)))))

    def get_attr(self, name):
        """Reads attribute `name` of every environment."""
        return self._request_all('getattr', lambda group: (name, list(range(len(group)))))

    def close(self):
        """Stops every worker in parallel; safe to call again."""
        close_workers([worker for worker in self.workers if worker is not None])

    def _empty_observ(self, count):
        """An uninitialised observation array for `count` environments."""
        space = self._observation_space
        return np.empty((count,) + space.shape, space.dtype)

    def _start_worker(self, index):
        """Starts (or rebuilds) worker `index` for its group of environments."""
        group = self.groups[index]
        self.workers[index] = EnvWorker(
            [self._constructors[i] for i in group], worker_index=index, env_indices=group)

    def _request_all(self, command, make_args):
        """Sends `make_args(group)` to every worker, again to a rebuilt one; flat results."""
        pending = {index: make_args(group) for index, group in enumerate(self.groups)}
        results = {}
        while pending:
            replies = self._exchange(command, pending)
            restarted = self._recover(replies)
            results.update({i: r for i, r in replies.items() if i not in restarted})
            pending = {index: pending[index] for index in restarted}
        return [item for index in range(len(self.workers)) for item in results[index]]

    def _exchange(self, command, args):
        """Sends `args[k]` to worker k for each k in `args`; waits for all replies.

        Returns {worker index: result, or the EnvWorkerError of a worker that
        failed}, failures to send included (a worker that died while idle).
        """
        results, sent, sequences = {}, [], []
        for index, worker_args in args.items():
            try:
                sequences.append(self.workers[index].send(command, worker_args))
                sent.append(index)
            except errors.EnvWorkerError as error:
                results[index] = error
        if sent:
            replies = receive_all([self.workers[i] for i in sent], sequences, command)
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

    def _restart(self, index, error):
        """Rebuilds a dead or hung worker within the budget and resets its envs.

        The envs are reset at once, so that the worker is ready for the next
        step whatever the caller does, and marked lost: the next step ends
        their episodes as truncated. A rebuilt worker that fails again counts
        as another restart.
        """
        group = self.groups[index]
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
            self.workers[index].close()
            try:
                self._start_worker(index)
                seeds = self._seeds.after_restart(group, self.restarts)
                self.workers[index].request('reset', (list(range(len(group))), seeds, None))
            except (errors.EnvWorkerCrashed, errors.EnvWorkerTimeout) as new_error:
                error = new_error
                continue
            self._seeds.mark_seeded(group)
            self._lost[group] = True
            return


def _restartable(error):
    """Whether a worker failure is a death or a hang (a restart may help)."""
    return isinstance(error, (errors.EnvWorkerCrashed, errors.EnvWorkerTimeout))


def _what_happened(error):
    """'died during step: killed by SIGKILL', or 'did not answer within 60 s during step'."""
    if isinstance(error, errors.EnvWorkerCrashed):
        return f'died during {error.command}: {errors.describe_exit(error.exitcode)}'
    return f'did not answer within {error.timeout:g} s during {error.command}'

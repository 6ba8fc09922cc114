"""The parent side of a worker process that hosts a group of environments.

The parent sends one request per group (step, reset, call, getattr, close) and
the child (`worker_child`) answers for every environment of the group in one
message, because a process round trip (~60 us here) costs more than a light
environment's step. Observations travel through a shared-memory buffer
(`shared_observ`); rewards, flags and infos travel on the pipe.

Every reply carries the sequence number of its request. The parent waits on the
pipe and the process sentinel together, so a dead child is seen at once, and
every wait has a timeout. A worker that died or timed out is stopped
(`process_stop`) and never used again; its error carries the child's Python
stacks (`stack_dumps`). This module keeps TensorFlow out of the child's imports.
"""

import itertools
import os
import time
import weakref
from multiprocessing import connection as mp_connection
from multiprocessing import get_context

import cloudpickle
import gin
import numpy as np

from agents_gin.envs import errors
from agents_gin.envs.process_stop import stop_processes
from agents_gin.envs.shared_observ import create_shared_observ
from agents_gin.envs.stack_dumps import (
    create_fault_file,
    read_stacks,
    request_stacks,
    unlink_quietly,
)
from agents_gin.envs.worker_child import child_main, env_name, in_worker_process

# env_name and in_worker_process are re-exported: callers import them from here.
__all__ = ['EnvWorker', 'close_workers', 'env_name', 'in_worker_process', 'receive_all']


@gin.configurable
class EnvWorker:
    """Runs `constructors` in one child process; the parent side of the protocol."""

    def __init__(self, constructors, worker_index=0, env_indices=None,
                 start_method='forkserver', shared_memory=True,
                 start_timeout=120.0, call_timeout=60.0, close_timeout=5.0):
        """Starts the child, builds its environments and reads their spaces.

        Args:
          constructors: picklable (by cloudpickle) callables, one per environment.
          worker_index: this worker's position, used in error messages.
          env_indices: the batch indices of these environments, for messages.
          start_method: 'forkserver' (default), 'spawn' or 'fork'. Forking a
            process that already runs TensorFlow threads is unsafe.
          shared_memory: send observations through shared memory.
          start_timeout: seconds to import, parse gin and build the envs.
          call_timeout: seconds for any later request (step, reset, ...); a
            worker that takes longer is stopped and raises EnvWorkerTimeout.
          close_timeout: seconds for each stage of close (ask, then SIGTERM,
            then SIGKILL), so close takes at most about 2 x close_timeout.
            `close_workers` stops several workers in parallel within that bound.
        All three are bindable in gin, e.g. `EnvWorker.call_timeout = 10.0`.
        """
        self.worker_index = worker_index
        self.env_indices = tuple(env_indices if env_indices is not None
                                 else range(len(constructors)))
        self.call_timeout = call_timeout
        self._close_timeout = close_timeout
        self._sequence = itertools.count(1)
        self._broken = None
        self._observ_view = None
        context = get_context(start_method)
        self._conn, child_conn = context.Pipe()
        payload = cloudpickle.dumps(list(constructors))
        # The child dumps its stacks here on a fatal signal; the parent keeps
        # the descriptor, and the child unlinks the name once it has opened it.
        self._fault_fd, fault_path = create_fault_file()
        self._process = context.Process(
            target=child_main, args=(child_conn, payload, gin.config_str(), fault_path),
            name=f'env-worker-{worker_index}', daemon=True)
        try:
            self._process.start()
        except BaseException:
            os.close(self._fault_fd)
            unlink_quietly(fault_path)
            raise
        child_conn.close()
        self.pid = self._process.pid
        self._finalizer = weakref.finalize(
            self, stop_processes, [(self._process, self._conn, self._fault_fd)],
            close_timeout)
        try:
            self.spaces = self.receive(0, 'construct', start_timeout)
        finally:
            unlink_quietly(fault_path)  # In case the child died before it could.
        self.observation_space, self.action_space, _ = self.spaces[0]
        if shared_memory and getattr(self.observation_space, 'shape', None) is not None:
            self._attach_shared_memory()

    def send(self, command, args=None):
        """Sends a request without waiting; returns its sequence number."""
        if self._broken:
            raise errors.EnvWorkerError(
                f'this worker is not used again after an earlier failure ({self._broken})',
                self.worker_index, self.env_indices, self.pid, command)
        sequence = next(self._sequence)
        try:
            self._conn.send((sequence, command, args))
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
            self._raise_crashed(command)
        return sequence

    def receive(self, sequence, command, timeout=None):
        """Waits for the reply to `sequence`; raises a typed error on failure."""
        timeout = self.call_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            ready = mp_connection.wait([self._conn, self._process.sentinel], remaining)
            if not ready:
                self.raise_timeout(command, timeout)
            done, result = self.take_reply(sequence, command, self._conn in ready)
            if done:
                return result

    def take_reply(self, sequence, command, readable=False):
        """Reads one ready message: (True, result), or (False, None) for a stale one."""
        if not readable and not self._conn.poll():
            self._raise_crashed(command)  # Only the sentinel fired: the child is gone.
        try:
            reply_sequence, status, payload = self._conn.recv()
        except (EOFError, OSError):
            self._raise_crashed(command)
        if reply_sequence != sequence:
            return False, None  # Left over from a request abandoned after an error.
        if status == 'ok':
            return True, payload
        remote_type, message, remote_traceback = payload
        if command == 'construct':
            self._fail('its constructor failed')
        raise errors.EnvWorkerError(
            f'{remote_type}: {message}', self.worker_index, self.env_indices,
            self.pid, command, remote_type, remote_traceback)

    def raise_timeout(self, command, timeout):
        """Stops a worker that did not answer in time and raises, with its stacks."""
        stacks = request_stacks(self._process, self._read_stacks)
        # A hung child reads no request: skip asking it to close, SIGTERM at once.
        self._fail(f'no answer within {timeout:g} s during {command}', ask=False)
        raise errors.EnvWorkerTimeout(
            self.worker_index, self.env_indices, self.pid, command, timeout, stacks)

    def request(self, command, args=None, timeout=None):
        """Sends a request and waits for its reply."""
        return self.receive(self.send(command, args), command, timeout)

    def read_observ(self, local_indices=None):
        """Copies observations out of shared memory (after a step or reset)."""
        if local_indices is None:
            return self._observ_view.copy()
        return self._observ_view[local_indices]

    @property
    def uses_shared_memory(self):
        """Whether observations come back through shared memory."""
        return self._observ_view is not None

    @property
    def exitcode(self):
        """The child's exit code, None while it runs."""
        return self._process.exitcode

    def close(self):
        """Stops the child within a bound; safe to call more than once."""
        close_workers([self])

    def _attach_shared_memory(self):
        """Gives the child a shared buffer for the group's observations."""
        space = self.observation_space
        shape = (len(self.env_indices),) + tuple(space.shape)
        dtype = np.dtype(space.dtype)
        self._observ_view = create_shared_observ(
            shape, dtype, lambda path: self.request('attach', (path, shape, dtype.str)))

    def _fail(self, reason, ask=True):
        """Marks the worker unusable and stops its process (`ask`: request a close first)."""
        self._broken = reason
        detached = self._finalizer.detach()  # None once stopped.
        if detached is not None:
            stop_processes(detached[2][0], self._close_timeout, ask)

    def _raise_crashed(self, command):
        """Raises EnvWorkerCrashed with the exit status and any stacks the child dumped."""
        self._process.join(self._close_timeout)
        exitcode = self._process.exitcode
        stacks = self._read_stacks()
        self._fail(f'died: {errors.describe_exit(exitcode)}')
        raise errors.EnvWorkerCrashed(
            self.worker_index, self.env_indices, self.pid, command, exitcode, stacks)

    def _read_stacks(self):
        """What the child's faulthandler wrote, or None."""
        if not self._finalizer.alive:
            return None  # Closed: the descriptor is gone.
        return read_stacks(self._fault_fd)


def receive_all(workers, sequences, command):
    """Waits for one reply from each worker at once, so a death anywhere is seen at once.

    Returns one result per worker; a worker that failed gives its `EnvWorkerError`
    instead, so that the caller can restart it and keep the others' results.
    """
    timeout = max(worker.call_timeout for worker in workers)
    deadline = time.monotonic() + timeout
    results = [None] * len(workers)
    pending = set(range(len(workers)))
    while pending:
        owner = {}
        for index in pending:
            owner[workers[index]._conn] = index
            owner[workers[index]._process.sentinel] = index
        remaining = max(0.0, deadline - time.monotonic())
        ready = mp_connection.wait(list(owner), remaining)
        failed = [] if ready else sorted(pending)
        for index in failed:
            try:
                workers[index].raise_timeout(command, timeout)
            except errors.EnvWorkerError as error:
                results[index] = error
                pending.discard(index)
        readable = {owner[handle] for handle in ready if handle is workers[owner[handle]]._conn}
        for index in sorted({owner[handle] for handle in ready}):
            try:
                done, result = workers[index].take_reply(sequences[index], command,
                                                         index in readable)
            except errors.EnvWorkerError as error:
                done, result = True, error
            if done:
                results[index] = result
                pending.discard(index)
    return results


def close_workers(workers):
    """Stops several workers in parallel: at most about 2 x close_timeout in all.

    Each stage (ask to close, SIGTERM, SIGKILL) goes to every remaining worker
    at once and shares one deadline, so N hung workers do not take N bounds.
    Safe to call more than once and on workers already stopped.
    """
    entries, timeout = [], 0.0
    for worker in workers:
        worker._broken = worker._broken or 'closed'
        detached = worker._finalizer.detach()  # None once stopped.
        if detached is not None:
            entries.extend(detached[2][0])
            timeout = max(timeout, worker._close_timeout)
    stop_processes(entries, timeout)

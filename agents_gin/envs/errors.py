"""Errors raised by environment workers, built in the parent from plain data.

A child never pickles an exception object: exception classes defined in a
configurable module, or with multi-argument constructors, do not survive the
round trip. It sends the type name, the message and the formatted traceback, and
the parent raises one of the classes below with everything a person needs to
find the failing environment.
"""

import signal


class EnvWorkerError(RuntimeError):
    """An environment worker failed; names the worker, its envs, pid and command."""

    def __init__(self, summary, worker_index, env_indices, pid, command,
                 remote_type=None, remote_traceback=None):
        self.worker_index = worker_index
        self.env_indices = tuple(env_indices)
        self.pid = pid
        self.command = command
        self.summary = summary
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback
        message = (f'{summary} [worker {worker_index}, envs {list(self.env_indices)}, '
                   f'pid {pid}, during {command}]')
        if remote_traceback:
            message += '\n--- traceback in the worker ---\n' + remote_traceback.rstrip()
        super().__init__(message)


class EnvWorkerCrashed(EnvWorkerError):
    """The worker process died; `exitcode` is negative for a signal.

    `remote_traceback` holds the Python stacks the child dumped on a fatal
    signal (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL), when there are any.
    """

    def __init__(self, worker_index, env_indices, pid, command, exitcode,
                 remote_traceback=None):
        self.exitcode = exitcode
        super().__init__(
            f'environment worker died: {describe_exit(exitcode)}',
            worker_index, env_indices, pid, command, remote_traceback=remote_traceback)


class EnvWorkerTimeout(EnvWorkerError, TimeoutError):
    """The worker did not answer in time; it is never used again.

    `remote_traceback` holds the child's Python stacks, asked for just before
    it was stopped: where it hung.
    """

    def __init__(self, worker_index, env_indices, pid, command, timeout,
                 remote_traceback=None):
        self.timeout = timeout
        super().__init__(
            f'environment worker did not answer within {timeout:g} s and was stopped',
            worker_index, env_indices, pid, command, remote_traceback=remote_traceback)


class RestartLimitExceeded(EnvWorkerError):
    """A worker died or hung once more than `BatchEnv.max_restarts` allows.

    Carries the last failure as `cause` (an `EnvWorkerCrashed` or
    `EnvWorkerTimeout`); its exit code is `exitcode` (None after a timeout).
    """

    def __init__(self, cause, restarts, max_restarts):
        self.cause = cause
        self.exitcode = getattr(cause, 'exitcode', None)
        self.restarts = restarts
        self.max_restarts = max_restarts
        super().__init__(
            f'{cause.summary}; the restart limit was reached ({restarts} worker restarts so '
            f'far, BatchEnv.max_restarts = {max_restarts})',
            cause.worker_index, cause.env_indices, cause.pid, cause.command,
            cause.remote_type, cause.remote_traceback)


def describe_exit(exitcode):
    """Says how a process ended, naming the signal when it was killed by one."""
    if exitcode is None:
        return 'still running'
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f'signal {-exitcode}'
        hint = ' (possibly the out-of-memory killer)' if name == 'SIGKILL' else ''
        return f'killed by {name}{hint}'
    return f'exited with code {exitcode}'

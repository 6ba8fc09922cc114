"""A child process that hosts a group of environments and steps them together.

The parent sends one request per group (step, reset, call, getattr, close) and
the child answers for every environment of the group in one message, because a
process round trip (~60 us here) costs more than a light environment's step.
Observations travel through a shared-memory buffer; rewards, flags and infos
travel on the pipe.

Every reply carries the sequence number of its request. The parent waits on the
pipe and the process sentinel together, so a dead child is seen at once, and
every wait has a timeout. A worker that died or timed out is stopped and never
used again. A child that dies of a fatal signal (SIGSEGV, SIGABRT, ...) leaves
its Python stacks in a small file that the parent reads into the error; a hung
child is asked for its stacks (SIGUSR1) before it is stopped. This module keeps
TensorFlow out of the child's imports.
"""

import ctypes
import faulthandler
import importlib
import itertools
import mmap
import os
import signal
import sys
import tempfile
import time
import traceback
import weakref
from multiprocessing import connection as mp_connection
from multiprocessing import get_context

import cloudpickle
import gin
import numpy as np

from agents_gin.envs import errors


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
        self._fault_fd, fault_path = tempfile.mkstemp(prefix='agents_gin_fault_')
        self._process = context.Process(
            target=_child_main, args=(child_conn, payload, gin.config_str(), fault_path),
            name=f'env-worker-{worker_index}', daemon=True)
        try:
            self._process.start()
        except BaseException:
            os.close(self._fault_fd)
            _unlink_quietly(fault_path)
            raise
        child_conn.close()
        self.pid = self._process.pid
        self._finalizer = weakref.finalize(
            self, _stop_processes, [(self._process, self._conn, self._fault_fd)],
            close_timeout)
        try:
            self.spaces = self.receive(0, 'construct', start_timeout)
        finally:
            _unlink_quietly(fault_path)  # In case the child died before it could.
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
        stacks = self._dump_stacks()
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
        """Maps one file under /dev/shm in both processes, then unlinks it."""
        space = self.observation_space
        shape = (len(self.env_indices),) + tuple(space.shape)
        nbytes = max(1, int(np.prod(shape)) * np.dtype(space.dtype).itemsize)
        folder = '/dev/shm' if os.path.isdir('/dev/shm') else None
        fd, path = tempfile.mkstemp(prefix='agents_gin_', dir=folder)
        try:
            os.ftruncate(fd, nbytes)
            buffer = mmap.mmap(fd, nbytes)
            self.request('attach', (path, shape, np.dtype(space.dtype).str))
        finally:
            os.close(fd)
            os.unlink(path)
        self._observ_view = np.frombuffer(buffer, space.dtype).reshape(shape)

    def _fail(self, reason, ask=True):
        """Marks the worker unusable and stops its process (`ask`: request a close first)."""
        self._broken = reason
        detached = self._finalizer.detach()  # None once stopped.
        if detached is not None:
            _stop_processes(detached[2][0], self._close_timeout, ask)

    def _raise_crashed(self, command):
        """Raises EnvWorkerCrashed with the exit status and any stacks the child dumped."""
        self._process.join(self._close_timeout)
        exitcode = self._process.exitcode
        stacks = self._read_fault_file()
        self._fail(f'died: {errors.describe_exit(exitcode)}')
        raise errors.EnvWorkerCrashed(
            self.worker_index, self.env_indices, self.pid, command, exitcode, stacks)

    def _read_fault_file(self):
        """What the child's faulthandler wrote, or None."""
        if not self._finalizer.alive:
            return None  # Closed: the descriptor is gone.
        text = os.pread(self._fault_fd, 1 << 16, 0).decode('utf-8', 'replace').strip()
        return text or None

    def _dump_stacks(self, wait=0.5):
        """Asks a live child for its Python stacks (SIGUSR1); returns them or None."""
        if not self._process.is_alive():
            return self._read_fault_file()
        try:
            os.kill(self.pid, signal.SIGUSR1)
        except OSError:
            return None
        deadline = time.monotonic() + wait
        text = None
        while time.monotonic() < deadline:
            time.sleep(0.02)
            latest = self._read_fault_file()
            if latest and latest == text:
                break  # Nothing more arrived: the dump is complete.
            text = latest
        return text


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
    _stop_processes(entries, timeout)


def _stop_processes(entries, timeout, ask=True):
    """Asks each child to close, then SIGTERMs, then SIGKILLs the rest; stages in parallel.

    Args:
      entries: (process, connection, fault file descriptor) per worker.
      timeout: seconds each of the first two stages waits for all children.
      ask: whether to request a close first (False for a child known to hang).
    """
    remaining = [process for process, _, _ in entries if process.is_alive()]
    if ask:
        for process, conn, _ in entries:
            if process in remaining:
                try:
                    conn.send((0, 'close', None))
                except (OSError, ValueError):
                    pass
        remaining = _join_all(remaining, timeout)
    for process in remaining:
        process.terminate()
    remaining = _join_all(remaining, timeout)
    for process in remaining:
        process.kill()
    for process in remaining:
        process.join()
    for _, conn, fault_fd in entries:
        conn.close()
        os.close(fault_fd)


def _join_all(processes, timeout):
    """Waits until all `processes` exit or `timeout` passes; returns those still alive."""
    deadline = time.monotonic() + timeout
    alive = [process for process in processes if process.is_alive()]
    while alive:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        mp_connection.wait([process.sentinel for process in alive], remaining)
        alive = [process for process in alive if process.is_alive()]
    return alive


# ----------------------------------------------------------------------------
# The child side.


_IN_WORKER = []  # Holds True inside a worker's child process.


def in_worker_process():
    """Whether this process is an EnvWorker's child (test envs crash only there)."""
    return bool(_IN_WORKER)


def _child_main(conn, payload, gin_text, fault_path):
    """Builds the environments and serves requests until close or parent death."""
    _IN_WORKER.append(True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business.
    _die_with_parent()
    try:
        _watch_faults(fault_path)
        _load_gin(gin_text)
        envs = [constructor() for constructor in cloudpickle.loads(payload)]
        conn.send((0, 'ok', [(env.observation_space, env.action_space, env_name(env))
                             for env in envs]))
    except BaseException as error:  # noqa: B036 -- every failure must reach the parent.
        _send_error(conn, 0, error)
        return
    observ = None
    while True:
        try:
            sequence, command, args = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            break  # The parent is gone: leave quietly.
        if command == 'close':
            for env in envs:
                try:
                    env.close()
                except Exception:  # noqa: BLE001 -- closing must not stop the others.
                    pass
            break
        try:
            if command == 'attach':
                observ = _map_shared(*args)
                result = None
            elif command == 'step':
                result = _step(envs, args, observ)
            elif command == 'reset':
                result = _reset(envs, *args, observ)
            elif command == 'call':
                name, call_args, kwargs, local = args
                result = [getattr(envs[i], name)(*call_args, **kwargs) for i in local]
            elif command == 'getattr':
                name, local = args
                result = [getattr(envs[i], name) for i in local]
            else:
                raise KeyError(f'unknown worker command {command!r}')
        except BaseException as error:  # noqa: B036
            _send_error(conn, sequence, error)
            continue
        conn.send((sequence, 'ok', result))
    conn.close()


def env_name(env):
    """A short name for messages: the registered id, else the class name."""
    spec = getattr(env, 'spec', None)
    return spec.id if spec is not None else type(env.unwrapped).__name__


def _step(envs, actions, observ):
    """Steps every env of the group; observations go to shared memory if mapped."""
    observs, rewards, terminated, truncated, infos = [], [], [], [], []
    for index, (env, action) in enumerate(zip(envs, actions)):
        ob, reward, term, trunc, info = env.step(action)
        if observ is not None:
            observ[index] = ob
        else:
            observs.append(ob)
        rewards.append(reward)
        terminated.append(term)
        truncated.append(trunc)
        infos.append(info)
    # Most envs return empty infos; not pickling them saves a good part of a reply.
    return (None if observ is not None else np.stack(observs),
            np.asarray(rewards, np.float32), np.asarray(terminated, bool),
            np.asarray(truncated, bool), infos if any(infos) else None)


def _reset(envs, local_indices, seeds, options, observ):
    """Resets the listed envs of the group, with a seed each where given."""
    observs, infos = [], []
    for position, index in enumerate(local_indices):
        seed = None if seeds is None else seeds[position]
        ob, info = envs[index].reset(seed=seed, options=options)
        if observ is not None:
            observ[index] = ob
        else:
            observs.append(ob)
        infos.append(info)
    return (None if observ is not None else np.stack(observs)), infos


def _map_shared(path, shape, dtype):
    """Maps the parent's shared observation buffer."""
    with open(path, 'r+b') as file:
        buffer = mmap.mmap(file.fileno(), 0)
    return np.frombuffer(buffer, np.dtype(dtype)).reshape(shape)


def _send_error(conn, sequence, error):
    """Sends an exception as plain text; exception objects may not unpickle."""
    text = ''.join(traceback.format_exception(type(error), error, error.__traceback__))
    try:
        conn.send((sequence, 'error', (type(error).__qualname__, str(error), text)))
    except (OSError, ValueError):
        pass


_FAULT_FILE = []  # Keeps the child's fault file open for faulthandler.


def _watch_faults(path):
    """Dumps all Python stacks to `path` on a fatal signal or on SIGUSR1."""
    fault_file = open(path, 'w')  # noqa: SIM115 -- must stay open for the process's life.
    _unlink_quietly(path)  # Nothing is left behind, whoever dies first.
    _FAULT_FILE.append(fault_file)
    faulthandler.enable(fault_file, all_threads=True)
    faulthandler.register(signal.SIGUSR1, fault_file, all_threads=True)


def _load_gin(gin_text):
    """Adopts the parent's gin config, minus the imports of TensorFlow-side modules.

    The parent parsed the config strictly already. The child registers only the
    environment-side configurables, so it skips bindings of the others (PPO,
    networks) rather than importing TensorFlow, which makes a worker start in
    about a second instead of twenty. Every other `import` line must work here
    too: gin's lenient parse would skip a failing one silently and leave the
    worker without the configurables it brings, so it is imported first and a
    failure stops the worker's start naming the module.
    """
    import agents_gin.envs  # noqa: F401 -- registers the env configurables.

    kept = []
    for line in gin_text.splitlines():
        if _is_learner_import(line):
            continue
        module = _imported_module(line)
        if module is not None:
            _import_for_gin(module)
        kept.append(line)
    gin.clear_config()
    gin.parse_config('\n'.join(kept), skip_unknown=True)
    gin.finalize()


def _import_for_gin(module):
    """Imports a module named by a gin `import` line; a failure names the module."""
    try:
        importlib.import_module(module)
    except Exception as error:  # noqa: BLE001 -- any failure of the import counts.
        raise ImportError(
            f"The gin config's `import {module}` failed in the environment worker process "
            f'(it may be importable only in the parent): {type(error).__name__}: {error}'
        ) from error


def _imported_module(line):
    """The module of a gin `import a.b` or `import a.b as a2` line, else None."""
    words = line.split()
    if len(words) not in (2, 4) or words[0] != 'import' or (len(words) == 4 and
                                                            words[2] != 'as'):
        return None
    return words[1]


def _is_learner_import(line):
    """Whether a gin line imports a module the worker does not need.

    gin writes imports as `import a.b` or, in config_str(), `import a.b as a2`.
    """
    module = _imported_module(line)
    if module is None:
        return False
    if module.startswith('tensorflow') or module.startswith('launch'):
        return True
    return module.startswith('agents_gin') and not module.startswith('agents_gin.envs')


def _unlink_quietly(path):
    """Removes a file that may already be gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _die_with_parent():
    """Asks Linux to SIGKILL this process when its parent dies (no orphans)."""
    if not sys.platform.startswith('linux'):
        return
    try:
        libc = ctypes.CDLL('libc.so.6', use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 is PR_SET_PDEATHSIG.
    except OSError:
        pass

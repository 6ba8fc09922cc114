"""The child side of an EnvWorker: builds a group of environments and serves requests.

Each request is (sequence, command, args); each reply is (sequence, 'ok',
result) or (sequence, 'error', (type name, message, traceback text)). The first
reply, sequence 0, answers construction with each environment's spaces and
name. The commands:

  attach   (path, shape, dtype): map the shared observation buffer.
  step     actions, one per env of the group: step them all.
  reset    (local indices, seeds or None, options): reset the listed envs.
  call     (name, args, kwargs, local indices): call a method of the listed envs.
  getattr  (name, local indices): read an attribute of the listed envs.
  close    close the envs and exit (no reply).

This module, and every module it imports, keeps TensorFlow out of the child.
"""

import ctypes
import multiprocessing.forkserver
import os
import signal
import sys
import traceback

import cloudpickle
import numpy as np

from agents_gin.envs.shared_observ import map_shared_observ
from agents_gin.envs.stack_dumps import watch_faults
from agents_gin.envs.worker_gin import load_parent_config

_IN_WORKER = []  # Holds True inside a worker's child process.


def in_worker_process():
    """Whether this process is an EnvWorker's child (test envs crash only there)."""
    return bool(_IN_WORKER)


def env_name(env):
    """A short name for messages: the registered id, else the class name."""
    spec = getattr(env, 'spec', None)
    return spec.id if spec is not None else type(env.unwrapped).__name__


def child_main(conn, payload, gin_text, fault_path):
    """Builds the environments and serves requests until close or parent death."""
    _IN_WORKER.append(True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business.
    _die_with_parent()
    _release_forkserver()
    try:
        watch_faults(fault_path)
        load_parent_config(gin_text)
        envs = [constructor() for constructor in cloudpickle.loads(payload)]
        conn.send((0, 'ok', [(env.observation_space, env.action_space, env_name(env))
                             for env in envs]))
    except BaseException as error:  # noqa: B036 -- every failure must reach the parent.
        _send_error(conn, 0, error)
        return
    _serve(conn, envs)
    conn.close()


def _serve(conn, envs):
    """Answers requests until a close request or until the parent is gone."""
    observ = None  # The shared observation buffer, once attached.
    while True:
        try:
            sequence, command, args = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return  # The parent is gone: leave quietly.
        if command == 'close':
            _close_envs(envs)
            return
        try:
            if command == 'attach':
                observ = map_shared_observ(*args)
                result = None
            else:
                result = _run(envs, command, args, observ)
        except BaseException as error:  # noqa: B036 -- every failure must reach the parent.
            _send_error(conn, sequence, error)
            continue
        conn.send((sequence, 'ok', result))


def _run(envs, command, args, observ):
    """Runs one request on the group's envs; returns the reply's payload."""
    if command == 'step':
        return _step(envs, args, observ)
    if command == 'reset':
        return _reset(envs, *args, observ)
    if command == 'call':
        name, call_args, kwargs, local = args
        return [getattr(envs[i], name)(*call_args, **kwargs) for i in local]
    if command == 'getattr':
        name, local = args
        return [getattr(envs[i], name) for i in local]
    raise KeyError(f'unknown worker command {command!r}')


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


def _close_envs(envs):
    """Closes every env; one that fails to close does not keep the others open."""
    for env in envs:
        try:
            env.close()
        except Exception:  # noqa: BLE001 -- closing must not stop the others.
            pass


def _send_error(conn, sequence, error):
    """Sends an exception as plain text; exception objects may not unpickle."""
    text = ''.join(traceback.format_exception(type(error), error, error.__traceback__))
    try:
        conn.send((sequence, 'error', (type(error).__qualname__, str(error), text)))
    except (OSError, ValueError):
        pass


def _release_forkserver():
    """Lets the forkserver exit with the trainer, so that PR_SET_PDEATHSIG can fire.

    Under the forkserver start method this process's parent is the forkserver,
    not the trainer, and every child inherits the write end of the pipe that
    keeps the forkserver alive (multiprocessing/forkserver.py: "all client
    processes own the write end of the 'alive' pipe"). A hung child would then
    keep the forkserver, and so itself, alive after the trainer died. The child
    never asks that forkserver for processes (it does not know its address), so
    it closes the descriptor. The attributes are CPython's; without them this
    does nothing.
    """
    server = getattr(multiprocessing.forkserver, '_forkserver', None)
    alive_fd = getattr(server, '_forkserver_alive_fd', None)
    # A forkserver child inherits the descriptor without the server's pid; a
    # forked child of a process that started a forkserver has both: leave it.
    if alive_fd is None or getattr(server, '_forkserver_pid', None) is not None:
        return
    server._forkserver_alive_fd = None
    try:
        os.close(alive_fd)
    except OSError:
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

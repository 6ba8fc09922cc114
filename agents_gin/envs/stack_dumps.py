"""The Python stacks of a worker's child, for the error that reports its death or hang.

The child points faulthandler at a small file of its own: on a fatal signal
(SIGSEGV, SIGABRT, SIGBUS, ...) faulthandler writes every thread's stack there
before the process dies, and on SIGUSR1 it writes them and carries on, which is
how the parent learns where a hung child is stuck. The child unlinks the file's
name as soon as it has opened it, so nothing is left behind whoever dies first;
the parent reads it through the descriptor it kept.
"""

import faulthandler
import os
import signal
import tempfile
import time

_FAULT_FILE = []  # Keeps the child's fault file open for faulthandler.


def create_fault_file():
    """A new fault file for one child: (descriptor the parent keeps, path for the child)."""
    return tempfile.mkstemp(prefix='agents_gin_fault_')


def watch_faults(path):
    """In the child: dumps all Python stacks to `path` on a fatal signal or on SIGUSR1."""
    fault_file = open(path, 'w')  # noqa: SIM115 -- must stay open for the process's life.
    unlink_quietly(path)  # Nothing is left behind, whoever dies first.
    _FAULT_FILE.append(fault_file)
    faulthandler.enable(fault_file, all_threads=True)
    faulthandler.register(signal.SIGUSR1, fault_file, all_threads=True)


def read_stacks(fault_fd):
    """What the child's faulthandler has written to the fault file so far, or None."""
    text = os.pread(fault_fd, 1 << 16, 0).decode('utf-8', 'replace').strip()
    return text or None


def request_stacks(process, read, wait=0.5):
    """Asks a live child for its stacks (SIGUSR1); returns `read()` once it stops growing.

    Args:
      process: the child's multiprocessing.Process.
      read: returns the fault file's text so far, or None.
      wait: seconds to wait at most for the dump to complete.
    """
    if not process.is_alive():
        return read()
    try:
        os.kill(process.pid, signal.SIGUSR1)
    except OSError:
        return None
    deadline = time.monotonic() + wait
    text = None
    while time.monotonic() < deadline:
        time.sleep(0.02)
        latest = read()
        if latest and latest == text:
            break  # Nothing more arrived: the dump is complete.
        text = latest
    return text


def unlink_quietly(path):
    """Removes a file that may already be gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

"""Stopping worker processes within a bound, several at once.

A child is asked to close, then SIGTERMed, then SIGKILLed. Each stage goes to
every remaining child at once and shares one deadline, so N hung children take
one bound rather than N.
"""

import os
import time
from multiprocessing import connection as mp_connection


def stop_processes(entries, timeout, ask=True):
    """Asks each child to close, then SIGTERMs, then SIGKILLs the rest; stages in parallel.

    Args:
      entries: (process, connection, fault file descriptor) per worker; the
        connections and descriptors are closed at the end.
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
        remaining = join_all(remaining, timeout)
    for process in remaining:
        process.terminate()
    remaining = join_all(remaining, timeout)
    for process in remaining:
        process.kill()
    for process in remaining:
        process.join()
    for _, conn, fault_fd in entries:
        conn.close()
        os.close(fault_fd)


def join_all(processes, timeout):
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

"""SIGINT and SIGTERM during training: the first asks for a save, the second exits at once.

Python runs signal handlers in the main thread between bytecodes, so a handler
waits for the end of a graph call, which may take minutes. Here the C-level
handler of the `signal` module writes each signal's number to a wakeup pipe
(whichever thread the kernel picked), and a watcher thread reads it: the first
signal sets a flag the loop checks at its next safe point; the second ends the
process with os._exit at once, even in the middle of a graph call.
"""

import os
import signal
import sys
import threading

from absl import logging

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(Exception):
    """A signal stopped the run after a checkpoint was saved."""

    def __init__(self, signum, checkpoint):
        self.signum = signum
        self.checkpoint = checkpoint
        super().__init__(f'Stopped by {signal.Signals(signum).name} after saving {checkpoint}')


class SignalWatcher:
    """A context manager: `received` is the first signal's number (None until then)."""

    def __init__(self):
        self.received = None
        self._thread = None

    def __enter__(self):
        """Installs the handlers and the wakeup pipe and starts watching.

        Outside the main thread (where signals cannot be handled) it does nothing.
        """
        if threading.current_thread() is not threading.main_thread():
            return self
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)  # The C handler must never block.
        # A Python handler must be installed for the C handler to run; the
        # watcher thread does the work, so this one does nothing.
        self._previous = {signum: signal.signal(signum, _ignore) for signum in SIGNALS}
        self._previous_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name='signal-watcher', daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *unused_exc):
        """Restores the previous handlers and stops the watcher thread."""
        if self._thread is None:
            return
        signal.set_wakeup_fd(self._previous_fd)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        os.write(self._write, b'\0')  # Wakes the watcher, which ends on 0.
        self._thread.join()
        os.close(self._read)
        os.close(self._write)

    def _watch(self):
        """Reads signal numbers from the wakeup pipe until the 0 that __exit__ writes."""
        while True:
            for signum in os.read(self._read, 64):
                if signum == 0:
                    return
                if signum in SIGNALS:
                    self._handle(signum)

    def _handle(self, signum):
        name = signal.Signals(signum).name
        if self.received is None:
            self.received = signum
            logging.warning('%s received: saving at the next safe point; send it again to '
                            'exit at once.', name)
            return
        # Second signal: nothing is flushed or saved; the last checkpoint stays
        # intact (saves are atomic) and a torn metrics line is repaired on resume.
        os.write(sys.stderr.fileno(), f'{name} received again: exiting now.\n'.encode())
        os._exit(128 + signum)


def _ignore(unused_signum, unused_frame):
    """The main thread's share of the work: none (see SignalWatcher)."""

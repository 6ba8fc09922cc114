"""Progress on the console: a live line on a terminal, plain periodic lines otherwise.

The live line (rewritten in place) shows env steps of the total, steps per
second, elapsed time, time left, and the latest train and eval returns. When
the output is not a terminal (CI logs, nohup, a pipe) the same text is printed
as a plain line every `every_seconds`, so a log grows slowly and stays readable.
Each evaluation prints a permanent line in both cases.
"""

import collections
import sys
import time

# Steps per second are measured over roughly this many recent seconds.
RATE_WINDOW_SECONDS = 30.0


class Progress:
    """Tracks steps and returns; `update` after every chunk, `evaluation` after each eval."""

    def __init__(self, total_steps, every_seconds=30.0, stream=None, live=None, clock=None):
        """Prints progress for a run of `total_steps` env steps.

        Args:
          total_steps: the run's length in env steps.
          every_seconds: interval between plain lines (not a terminal).
          stream: where to print (sys.stdout by default).
          live: rewrite one line in place; by default when `stream` is a terminal.
          clock: a time.monotonic-like function (tests pass their own).
        """
        self.total_steps = total_steps
        self.every_seconds = every_seconds
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.clock = clock or time.monotonic
        self.train_return = None
        self.eval_return = None
        self._history = collections.deque()
        self._last_print = None
        self._line_width = 0

    def start(self, steps, elapsed):
        """The run (re)starts at `steps` env steps, `elapsed` seconds into it."""
        now = self.clock()
        self._history.clear()
        self._history.append((now, steps))
        self._elapsed_base = elapsed - now
        self._last_print = now

    def rate(self):
        """Env steps per second over the recent window (None before two points)."""
        if len(self._history) < 2:
            return None
        (first_time, first_steps), (last_time, last_steps) = self._history[0], self._history[-1]
        return (last_steps - first_steps) / max(last_time - first_time, 1e-9)

    def update(self, steps, train_return=None):
        """Records a chunk's end; refreshes the live line or prints a periodic one."""
        now = self.clock()
        self._history.append((now, steps))
        while len(self._history) > 2 and now - self._history[1][0] >= RATE_WINDOW_SECONDS:
            self._history.popleft()
        if train_return is not None:
            self.train_return = train_return
        if self.live:
            self._rewrite(self.status(steps))
        elif now - self._last_print >= self.every_seconds:
            self._last_print = now
            self._print(self.status(steps))

    def evaluation(self, steps, eval_return, eval_std):
        """Prints the permanent line of an evaluation."""
        self.eval_return = eval_return
        rate = self.rate()
        train = _number(self.train_return, 9)
        self._print(f'step {steps:>10,} | {_clock(self.elapsed())} | '
                    f'{_number(rate, 7, ",.0f")} steps/s | train return {train} | '
                    f'eval return {eval_return:9.1f} ± {eval_std:6.1f}')

    def elapsed(self):
        """Seconds of the run so far, earlier processes included."""
        return self._elapsed_base + self.clock()

    def status(self, steps):
        """The progress text for `steps` env steps."""
        rate = self.rate()
        left = (self.total_steps - steps) / rate if rate else None
        percent = 100.0 * steps / self.total_steps if self.total_steps else 100.0
        return (f'step {steps:,} of {self.total_steps:,} ({percent:.0f}%) | '
                f'{_number(rate, 0, ",.0f")} steps/s | elapsed {_clock(self.elapsed())} | '
                f'ETA {_clock(left) if left is not None else "-"} | '
                f'train return {_number(self.train_return, 0)} | '
                f'eval return {_number(self.eval_return, 0)}')

    def close(self):
        """Ends the live line, so that what follows starts on a fresh line."""
        if self.live and self._line_width:
            self.stream.write('\n')
            self.stream.flush()
            self._line_width = 0

    def _rewrite(self, text):
        padding = ' ' * max(self._line_width - len(text), 0)
        self.stream.write('\r' + text + padding)
        self.stream.flush()
        self._line_width = len(text)

    def _print(self, text):
        if self.live and self._line_width:
            # Replace the live line; it is drawn again below at the next update.
            text = '\r' + text + ' ' * max(self._line_width - len(text), 0)
            self._line_width = 0
        self.stream.write(text + '\n')
        self.stream.flush()


def _clock(seconds):
    """Seconds as H:MM:SS."""
    seconds = int(max(seconds, 0))
    return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


def _number(value, width, spec='.1f'):
    """`value` formatted, or '-' when unknown, right-aligned in `width`."""
    text = '-' if value is None else format(value, spec)
    return text.rjust(width)

"""The progress line: rate, ETA and returns, live on a terminal, periodic otherwise."""

import io

from agents_gin.progress import Progress


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_plain_lines_are_periodic_and_show_rate_eta_and_returns():
    clock, stream = Clock(), io.StringIO()
    progress = Progress(total_steps=10_000, every_seconds=30, stream=stream, clock=clock)
    assert not progress.live  # A StringIO is not a terminal.
    progress.start(steps=1_000, elapsed=50.0)
    clock.now += 10
    progress.update(2_000, train_return=-12.34)
    assert stream.getvalue() == ''  # Not yet 30 s since the start.
    clock.now += 25
    progress.update(4_000)
    # 3,000 steps in 35 s; 6,000 left at that rate: 70 s; 50 + 35 s elapsed.
    assert stream.getvalue() == (
        'step 4,000 of 10,000 (40%) | 86 steps/s | elapsed 0:01:25 | ETA 0:01:10 | '
        'train return -12.3 | eval return -\n')
    progress.evaluation(4_000, eval_return=-7.25, eval_std=1.5)
    assert stream.getvalue().splitlines()[-1] == (
        'step      4,000 | 0:01:25 |      86 steps/s | train return     -12.3 | '
        'eval return      -7.2 ±    1.5')
    clock.now += 29
    progress.update(5_000)
    assert len(stream.getvalue().splitlines()) == 2  # 29 s after the last plain line.
    clock.now += 1
    progress.update(6_000)
    assert stream.getvalue().splitlines()[-1].endswith('train return -12.3 | eval return -7.2')


def test_rate_forgets_points_older_than_its_window():
    clock = Clock()
    progress = Progress(total_steps=10**6, stream=io.StringIO(), clock=clock)
    progress.start(0, 0.0)
    assert progress.rate() is None
    for _ in range(10):  # 1,000 steps/s for 100 s, then 100 steps/s.
        clock.now += 10
        progress.update(progress._history[-1][1] + 10_000)
    for _ in range(10):
        clock.now += 10
        progress.update(progress._history[-1][1] + 1_000)
    assert 100 <= progress.rate() <= 150


def test_live_line_is_rewritten_in_place_and_evaluations_stay():
    clock, stream = Clock(), io.StringIO()
    progress = Progress(total_steps=1_000, stream=stream, live=True, clock=clock)
    progress.start(0, 0.0)
    clock.now += 1
    progress.update(100)
    clock.now += 1
    progress.update(200)
    text = stream.getvalue()
    assert '\n' not in text and text.count('\r') == 2
    assert text.rsplit('\r', 1)[-1].startswith('step 200 of 1,000 (20%) | 100 steps/s')
    progress.evaluation(200, -1.0, 0.0)
    progress.close()
    lines = stream.getvalue().split('\n')
    # The evaluation line overwrites the live line and ends with a newline.
    assert lines[0].rsplit('\r', 1)[-1].startswith('step        200 |')
    assert lines[1] == ''

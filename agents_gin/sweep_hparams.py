"""TensorBoard HParams for a sweep: `tensorboard --logdir=<sweep root>` compares its runs.

The sweep root gets the experiment (the swept bindings and the seed as
hyperparameters, final eval return and env steps per second as metrics); each
run directory gets an `hparams/` folder with its values and those metrics.
Written with tensorboard's protobufs and record writer, so the sweep process
never imports TensorFlow.
"""

import glob
import os
import threading
import time

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import summary_v2
from tensorboard.summary.writer.record_writer import RecordWriter

RETURN_TAG = 'sweep/final_eval_return'
RATE_TAG = 'sweep/env_steps_per_second'
SUFFIX = '.sweep'  # Marks the event files this module owns, so a rerun replaces them.


def write(root, runs, rows, names):
    """Writes the experiment under `root` and one session per run that has a directory.

    Args:
      root: the sweep's folder.
      runs: the sweep's Runs.
      rows: their result rows (sweep.read_result), in the same order.
      names: the swept bindings.
    """
    hparams = [summary_v2.HParam(name) for name in names] + [summary_v2.HParam('seed')]
    metrics = [summary_v2.Metric(RETURN_TAG, display_name='final eval return'),
               summary_v2.Metric(RATE_TAG, display_name='env steps per second')]
    _write_events(root, [summary_v2.hparams_config_pb(hparams, metrics)])
    for run, row in zip(runs, rows):
        if not os.path.isdir(run.run_dir):
            continue  # It failed before training started; the summary says why.
        values = {name: _value(value) for name, value in run.setting}
        values['seed'] = run.seed
        # The trial id groups a run's seeds; the seed itself stays a column.
        summaries = [summary_v2.hparams_pb(values, trial_id=f'{run.name}/seed{run.seed}')]
        step = row['env_steps'] or 0
        for tag, value in ((RETURN_TAG, row['eval_return']), (RATE_TAG, row['steps_per_second'])):
            if value is not None:
                summaries.append(summary_pb2.Summary(
                    value=[summary_pb2.Summary.Value(tag=tag, simple_value=float(value))]))
        _write_events(os.path.join(run.run_dir, 'hparams'), summaries, step)


def _value(value):
    """A value HParams can show: bool, number or string (a tuple or reference as text)."""
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def _write_events(folder, summaries, step=0):
    """Replaces this module's event file in `folder` with one holding `summaries`."""
    os.makedirs(folder, exist_ok=True)
    for old in glob.glob(os.path.join(folder, f'events.out.tfevents.*{SUFFIX}')):
        try:
            os.remove(old)
        except FileNotFoundError:
            pass  # Another sweep over the same root (a thread of a suite) removed it.
    path = os.path.join(folder, f'events.out.tfevents.{int(time.time()):010d}.'
                        f'{os.getpid()}-{threading.get_ident()}{SUFFIX}')
    writer = RecordWriter(open(path, 'wb'))
    try:
        writer.write(event_pb2.Event(wall_time=time.time(),
                                     file_version='brain.Event:2').SerializeToString())
        for summary in summaries:
            writer.write(event_pb2.Event(wall_time=time.time(), step=step,
                                         summary=summary).SerializeToString())
    finally:
        writer.close()

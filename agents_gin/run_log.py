"""metrics.jsonl and TensorBoard events kept consistent with the checkpoints.

A process can die at any moment: mid-chunk, mid-evaluation, mid-save, in the
middle of writing a line. On resume from the checkpoint at env step S,
everything logged past S belongs to a future that was thrown away, so it is
removed: metrics.jsonl keeps only records up to S (a torn last line is dropped
with a warning) and the event files lose their events past S. The new event
file starts with a SessionLog START at S + 1, which tells a TensorBoard that
already loaded the old events to drop them too. The loop writes an
evaluation's record only after the checkpoint of that step is saved.
"""

import glob
import json
import os
import time

import tensorflow as tf
from absl import logging

# Fault injection for tests: seconds to pause in the middle of writing a metrics
# line, so that a test can kill the process while the line is torn.
SLOW_WRITE_ENV = 'AGENTS_GIN_TEST_SLOW_METRICS_WRITE'


class MetricsLog:
    """One JSON record per evaluation, in env-step order."""

    def __init__(self, path):
        self.path = path

    def records(self):
        """The records on disk; unreadable lines (a torn write) are skipped with a warning."""
        if not os.path.exists(self.path):
            return []
        with open(self.path) as file:
            lines = file.read().split('\n')
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                logging.warning('Dropping unreadable line %d of %s (a write cut short): %.80r',
                                number, self.path, line)
        return records

    def truncate(self, max_steps):
        """Keeps the records up to `max_steps`, in strictly increasing step order.

        Rewrites the file atomically when anything changes (a torn line, records
        past the restored checkpoint); returns the records kept.
        """
        records = self.records()
        kept = []
        for record in records:
            steps = record.get('env_steps')
            if isinstance(steps, int) and steps <= max_steps and (
                    not kept or steps > kept[-1]['env_steps']):
                kept.append(record)
        if os.path.exists(self.path) and (len(kept) != len(records) or not _ends_cleanly(
                self.path)):
            if len(kept) != len(records):
                logging.warning('Dropping %d records of %s past env step %d (the restored '
                                'checkpoint).', len(records) - len(kept), self.path, max_steps)
            _atomic_write(self.path, ''.join(json.dumps(record) + '\n' for record in kept))
        return kept

    def append(self, record):
        """Appends `record` as one line and makes it durable before returning."""
        line = json.dumps(record) + '\n'
        with open(self.path, 'a') as file:
            pause = float(os.environ.get(SLOW_WRITE_ENV) or 0)
            if pause:
                file.write(line[:len(line) // 2])
                file.flush()
                time.sleep(pause)
                line = line[len(line) // 2:]
            file.write(line)
            file.flush()
            os.fsync(file.fileno())


def purge_events(folder, max_steps):
    """Removes events past `max_steps` from the event files in `folder` (atomic rewrites).

    A file whose last record is torn (the process died while writing it) is
    cut before that record. Returns how many events were removed.
    """
    removed = 0
    for path in sorted(glob.glob(os.path.join(folder, 'events.out.tfevents.*'))):
        kept, dropped, torn = [], 0, False
        try:
            for raw in tf.data.TFRecordDataset(path):
                raw = raw.numpy()
                if tf.compat.v1.Event.FromString(raw).step > max_steps:
                    dropped += 1
                else:
                    kept.append(raw)
        except tf.errors.DataLossError:
            torn = True
        if not dropped and not torn:
            continue
        temporary = path + '.purge'
        with tf.io.TFRecordWriter(temporary) as writer:
            for raw in kept:
                writer.write(raw)
        os.replace(temporary, path)
        removed += dropped
    return removed


def mark_start(writer, steps, resumed):
    """Writes the SessionLog START that tells TensorBoard where this process starts.

    TensorBoard's loader takes the first START of a run as its beginning and
    every later one as a restart: it drops the events it already loaded from
    that step on. A resumed run writes START at `steps` + 1 twice: once in
    case the earlier processes wrote none (older versions), the second to purge.
    """
    status = tf.compat.v1.SessionLog(status=tf.compat.v1.SessionLog.START)
    for _ in range(2 if resumed else 1):
        event = tf.compat.v1.Event(wall_time=time.time(), step=steps + 1 if resumed else 0,
                                   session_log=status)
        with writer.as_default():
            tf.raw_ops.ImportEvent(writer=writer._resource,  # pylint: disable=protected-access
                                   event=event.SerializeToString())
    writer.flush()


def _ends_cleanly(path):
    """Whether the file is empty or ends with a newline (no torn last line)."""
    with open(path, 'rb') as file:
        file.seek(0, os.SEEK_END)
        if file.tell() == 0:
            return True
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b'\n'


def _atomic_write(path, text):
    """Writes `text` to `path` through a temporary file and a rename."""
    temporary = path + '.tmp'
    with open(temporary, 'w') as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)

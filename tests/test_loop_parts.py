"""The loop's parts on their own: damaged checkpoints, TensorBoard restarts, signals."""

import glob
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

from agents_gin import checkpoints, run_log

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def save_three(folder):
    """Checkpoints 1, 2 and 3 of a variable holding the same number."""
    value = tf.Variable(0.0)
    checkpoint = tf.train.Checkpoint(value=value)
    manager = tf.train.CheckpointManager(checkpoint, folder, max_to_keep=5)
    for step in (1, 2, 3):
        value.assign(float(step))
        manager.save(checkpoint_number=step)
    return checkpoint, value


def truncate_data(folder, step):
    data = glob.glob(os.path.join(folder, f'ckpt-{step}.data-*'))[0]
    with open(data, 'r+b') as file:
        file.truncate(os.path.getsize(data) // 2)
    return data


def test_a_truncated_latest_checkpoint_is_set_aside_and_the_previous_one_restored(
        tmp_path, caplog):
    folder = str(tmp_path / 'checkpoints')
    checkpoint, value = save_three(folder)
    data = truncate_data(folder, 3)
    value.assign(0.0)
    with caplog.at_level(logging.WARNING):
        path, manager = checkpoints.restore_latest(checkpoint, folder, max_to_keep=5)
    assert path == os.path.join(folder, 'ckpt-2') and float(value) == 2.0
    assert f'Checkpoint {folder}/ckpt-3 does not load' in caplog.text
    assert 'trying the previous one' in caplog.text
    assert sorted(os.listdir(os.path.join(folder, 'damaged'))) == [
        'ckpt-3.data-00000-of-00001', 'ckpt-3.index']
    assert not os.path.exists(data)
    # The manager no longer lists it; the next save at 3 is the latest again.
    assert manager.checkpoints == [os.path.join(folder, 'ckpt-1'), os.path.join(folder, 'ckpt-2')]
    value.assign(30.0)
    manager.save(checkpoint_number=3)
    value.assign(0.0)
    path, _ = checkpoints.restore_latest(checkpoint, folder, max_to_keep=5)
    assert path.endswith('ckpt-3') and float(value) == 30.0


def test_when_no_checkpoint_loads_the_error_names_each(tmp_path):
    folder = str(tmp_path / 'checkpoints')
    checkpoint, _ = save_three(folder)
    for step in (1, 2, 3):
        truncate_data(folder, step)
    with pytest.raises(checkpoints.CheckpointNotLoadable,
                       match=rf'^No checkpoint loads: {folder}/ckpt-3: .+; {folder}/ckpt-2: .+; '
                             rf'{folder}/ckpt-1: '):
        checkpoints.restore_latest(checkpoint, folder, max_to_keep=5)
    assert len(os.listdir(folder)) == 7  # Nothing moved: nothing was restored instead.


def test_a_checkpoint_of_other_objects_is_an_error_not_damage(tmp_path):
    folder = str(tmp_path / 'checkpoints')
    save_three(folder)
    other = tf.train.Checkpoint(other=tf.Variable(0.0))
    with pytest.raises(checkpoints.CheckpointNotLoadable,
                       match=rf'^{folder}/ckpt-3 does not match the objects of this run \(was the '
                             r'algorithm or a network changed since it was saved\?\): it holds '
                             r'value/.ATTRIBUTES/VARIABLE_VALUE, which this run lacks'):
        checkpoints.restore_latest(other, folder, max_to_keep=5)


def test_state_added_since_the_save_starts_fresh_and_the_rest_is_restored(tmp_path, caplog):
    folder = str(tmp_path / 'checkpoints')
    save_three(folder)
    value, added = tf.Variable(0.0), tf.Variable(7, dtype=tf.int64)
    newer = tf.train.Checkpoint(value=value, added=added)
    with caplog.at_level(logging.WARNING):
        path, _ = checkpoints.restore_latest(newer, folder, max_to_keep=5)
    assert path == os.path.join(folder, 'ckpt-3') and float(value) == 3.0 and int(added) == 7
    assert (f'{folder}/ckpt-3 has no values for added/.ATTRIBUTES/VARIABLE_VALUE (added to the '
            'code since it was saved); they start from their initial values.') in caplog.text


def tensorboard_steps(folder, tag):
    """The steps TensorBoard's loader keeps for `tag` (purges applied, nothing sampled)."""
    accumulator = EventAccumulator(str(folder), size_guidance={'tensors': 0})
    accumulator.Reload()
    return [event.step for event in accumulator.Tensors(tag)]


@pytest.mark.parametrize('first_marked', [True, False])  # False: a run of an older version.
def test_a_restart_mark_makes_tensorboard_drop_every_tag_past_the_step(tmp_path, first_marked):
    writer = tf.summary.create_file_writer(str(tmp_path))
    if first_marked:
        run_log.mark_start(writer, 0, resumed=False)
    with writer.as_default():
        for step in range(1, 11):
            tf.summary.scalar('kept', 1.0, step=step)
            tf.summary.scalar('rewritten', 1.0, step=step)
    writer.close()
    time.sleep(1.1)  # Event file names hold the second they were made.
    writer = tf.summary.create_file_writer(str(tmp_path))
    run_log.mark_start(writer, 5, resumed=True)
    with writer.as_default():
        for step in (6, 7):
            tf.summary.scalar('rewritten', 2.0, step=step)
    writer.close()
    # Only the mark removes 6-10 of a tag the new process does not write again.
    assert tensorboard_steps(tmp_path, 'kept') == [1, 2, 3, 4, 5]
    assert tensorboard_steps(tmp_path, 'rewritten') == [1, 2, 3, 4, 5, 6, 7]


def test_purged_event_files_keep_events_up_to_the_step_and_lose_a_torn_tail(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        for step in range(1, 6):
            tf.summary.scalar('x', float(step), step=step)
    writer.close()
    path = glob.glob(str(tmp_path / 'events.out.tfevents.*'))[0]
    with open(path, 'ab') as file:
        file.write(b'\x10\x00\x00')  # Half a record header: the writer died here.
    assert run_log.purge_events(str(tmp_path), 3) == 2
    events = list(tf.compat.v1.train.summary_iterator(path))
    assert [event.step for event in events if event.summary.value] == [1, 2, 3]
    assert run_log.purge_events(str(tmp_path), 3) == 0


SIGNAL_SCRIPT = textwrap.dedent('''
    import sys, time
    import tensorflow as tf
    from agents_gin.signals import SignalWatcher

    @tf.function
    def long_call():
        # Minutes of work in one graph call, no Python in between.
        return tf.while_loop(lambda i, x: i < 10**9,
                             lambda i, x: (i + 1, tf.sin(x) + 1.0),
                             (tf.constant(0), tf.constant(0.0)))

    with SignalWatcher() as signals:
        print('calling', flush=True)
        long_call()
    print('returned', flush=True)
''')


def test_the_second_signal_ends_the_process_inside_a_graph_call():
    process = subprocess.Popen([sys.executable, '-c', SIGNAL_SCRIPT], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
    for line in process.stdout:
        if line.startswith('calling'):
            break
    time.sleep(3)  # Well inside the call (tracing takes a fraction of that).
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert process.poll() is None  # The first only asks for a save.
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    elapsed = time.monotonic() - sent
    output = process.stdout.read()
    assert process.returncode == 128 + signal.SIGINT, output
    assert elapsed < 1.0, elapsed
    assert 'SIGINT received: saving at the next safe point' in output
    assert 'SIGINT received again: exiting now.' in output and 'returned' not in output

"""Checkpoints of a run: atomic saves, leftovers swept, a damaged latest one skipped.

TF's CheckpointManager writes each checkpoint to a temporary name and renames
it, so a save cut short leaves a `*_temp*` folder (removed at start) and the
previous checkpoints intact. A checkpoint can still be damaged afterwards (a
full disk, a truncated copy): restoring reads every tensor first, and one that
does not load is moved to `checkpoints/damaged/` with a warning naming it, and
the next older one is tried.
"""

import glob
import os
import shutil
import tempfile

import tensorflow as tf
from absl import logging
from google.protobuf import text_format


class CheckpointNotLoadable(RuntimeError):
    """No checkpoint of the run loads; the message names each and why."""


def restore_latest(checkpoint, folder, max_to_keep):
    """Restores the newest checkpoint in `folder` that loads into `checkpoint`.

    Sweeps leftovers of interrupted saves first. Returns the restored path (None
    for a new run) and the CheckpointManager to save with; damaged checkpoints
    are no longer on its list.
    """
    remove_temporary_checkpoints(folder)
    manager = tf.train.CheckpointManager(checkpoint, folder, max_to_keep)
    failures = []
    for path in reversed(manager.checkpoints):
        try:
            _read_every_tensor(path)
            # A checkpoint that reads but does not match the objects is a wrong
            # config, not damage: the error stops the run, naming the mismatch.
            status = checkpoint.restore(path)
        except (tf.errors.OpError, ValueError, IndexError, KeyError) as error:
            logging.warning('Checkpoint %s does not load (%s); trying the previous one.', path,
                            _first_line(error))
            failures.append((path, error))
            continue
        _check_objects_match(checkpoint, path, status)
        if failures:
            _set_aside(failures, folder, path)
            manager = tf.train.CheckpointManager(checkpoint, folder, max_to_keep)
        return path, manager
    if failures:
        raise CheckpointNotLoadable('No checkpoint loads: ' + '; '.join(
            f'{path}: {_first_line(error)}' for path, error in failures))
    return None, manager


def _check_objects_match(checkpoint, path, status):
    """Raises CheckpointNotLoadable unless every value saved in `path` found its object.

    Objects that the checkpoint has no values for (state added to the code since
    the run was saved, such as a new counter) keep their initial values, with a
    warning naming them, so that a newer version of the code resumes older runs.
    """
    try:
        status.assert_existing_objects_matched()
        return
    except AssertionError as error:
        mismatch = _first_line(error)
    saved = _value_names(path)
    with tempfile.TemporaryDirectory() as folder:
        current = _value_names(checkpoint.write(os.path.join(folder, 'probe')))
    lost = sorted(saved - current)
    if lost:
        raise CheckpointNotLoadable(
            f'{path} does not match the objects of this run (was the algorithm or a network '
            f'changed since it was saved?): it holds {", ".join(lost[:3])}'
            f'{" and more" if len(lost) > 3 else ""}, which this run lacks ({mismatch})')
    logging.warning('%s has no values for %s (added to the code since it was saved); they '
                    'start from their initial values.', path, ', '.join(sorted(current - saved)))


def _value_names(path):
    """The names of the values saved in a checkpoint, without TF's own bookkeeping."""
    return {name for name, _ in tf.train.list_variables(path)
            if not name.startswith(('_CHECKPOINTABLE_OBJECT_GRAPH', 'save_counter'))}


def remove_temporary_checkpoints(folder):
    """Removes `*_temp*` leftovers of a save that a crash interrupted."""
    if not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        if '_temp' in name:
            path = os.path.join(folder, name)
            logging.warning('Removing leftover temporary checkpoint %s', path)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


def _read_every_tensor(path):
    """Reads all values of the checkpoint, so that damage shows now rather than mid-run.

    (Values of objects created later, such as optimizer slots, are restored
    lazily, when they are first used.)
    """
    reader = tf.train.load_checkpoint(path)
    for name in reader.get_variable_to_shape_map():
        reader.get_tensor(name)


def _set_aside(failures, folder, restored):
    """Moves damaged checkpoints' files to damaged/ and takes them off the folder's list."""
    damaged = os.path.join(folder, 'damaged')
    os.makedirs(damaged, exist_ok=True)
    for path, _ in failures:
        for name in glob.glob(glob.escape(path) + '.*'):
            os.replace(name, os.path.join(damaged, os.path.basename(name)))
        logging.warning('Moved the damaged checkpoint %s to %s; resuming from %s.', path,
                        damaged, restored)
    _forget(folder, {path for path, _ in failures}, restored)


def _forget(folder, bad, restored):
    """Rewrites the folder's checkpoint list without `bad`, `restored` as the latest.

    The list keeps each checkpoint's save time, which CheckpointManager needs
    to go on deleting the oldest ones.
    """
    state = tf.train.get_checkpoint_state(folder)
    pairs = list(zip(state.all_model_checkpoint_paths, state.all_model_checkpoint_timestamps))
    pairs = [(path, stamp) for path, stamp in pairs if path not in bad]
    del state.all_model_checkpoint_paths[:]
    del state.all_model_checkpoint_timestamps[:]
    for path, stamp in pairs:
        # Names relative to the folder, as CheckpointManager writes them.
        state.all_model_checkpoint_paths.append(os.path.basename(path))
        state.all_model_checkpoint_timestamps.append(stamp)
    state.model_checkpoint_path = os.path.basename(restored)
    path = os.path.join(folder, 'checkpoint')
    with open(path + '.tmp', 'w') as file:
        file.write(text_format.MessageToString(state))
    os.replace(path + '.tmp', path)


def _first_line(error):
    """The first line of an error's message (TF's messages run long)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

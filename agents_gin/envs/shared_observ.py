"""Observation buffers shared between a worker's child and the parent.

The child writes each step's observations straight into a buffer that the
parent reads, instead of pickling them onto the pipe, which matters for image
observations. The buffer is a file under /dev/shm, mapped in both processes and
unlinked as soon as both have mapped it, so nothing is left behind whoever dies
first.
"""

import mmap
import os
import tempfile

import numpy as np


def create_shared_observ(shape, dtype, share):
    """In the parent: maps a new buffer; `share(path)` must map it in the child.

    Args:
      shape: the buffer's shape, [group size, ...observation shape].
      dtype: the observations' dtype.
      share: called with the buffer file's path while it still exists.

    Returns:
      The buffer as a numpy array that the child's writes show through.
    """
    dtype = np.dtype(dtype)
    nbytes = max(1, int(np.prod(shape)) * dtype.itemsize)
    folder = '/dev/shm' if os.path.isdir('/dev/shm') else None
    fd, path = tempfile.mkstemp(prefix='agents_gin_', dir=folder)
    try:
        os.ftruncate(fd, nbytes)
        buffer = mmap.mmap(fd, nbytes)
        share(path)
    finally:
        os.close(fd)
        os.unlink(path)
    return np.frombuffer(buffer, dtype).reshape(shape)


def map_shared_observ(path, shape, dtype):
    """In the child: maps the parent's buffer at `path` as an array to write into."""
    with open(path, 'r+b') as file:
        buffer = mmap.mmap(file.fileno(), 0)
    return np.frombuffer(buffer, np.dtype(dtype)).reshape(shape)

"""Learning curves from the metrics.jsonl that the training loop writes."""

import collections
import json
import os

import numpy as np


def read_metrics(run_dir):
    """The evaluation records of one run, in order."""
    with open(os.path.join(run_dir, 'metrics.jsonl')) as file:
        return [json.loads(line) for line in file if line.strip()]


def group_name(run_dir):
    """The config name of a run directory '<timestamp>-<config>'."""
    name = os.path.basename(os.path.normpath(run_dir))
    return name.split('-', 1)[1] if '-' in name else name


def plot(run_dirs, out, title=None):
    """Draws return vs env steps and vs seconds; returns the written paths."""
    import matplotlib  # Imported here: plotting is optional for training.

    matplotlib.use('Agg')
    from matplotlib import pyplot

    groups = collections.defaultdict(list)
    for run_dir in run_dirs:
        groups[group_name(run_dir)].append(read_metrics(run_dir))
    figure, axes = pyplot.subplots(1, 2, figsize=(11, 4))
    for name, runs in sorted(groups.items()):
        for axis, key in zip(axes, ('env_steps', 'seconds')):
            x, mean, low, high = _band(runs, key)
            line, = axis.plot(x, mean, label=f'{name} ({len(runs)} runs)')
            axis.fill_between(x, low, high, alpha=0.2, color=line.get_color())
    for axis, label in zip(axes, ('env steps', 'wall-clock seconds')):
        axis.set_xlabel(label)
        axis.set_ylabel('eval return')
        axis.grid(alpha=0.3)
    axes[0].legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    paths = [f'{out}.png', f'{out}.svg']
    for path in paths:
        figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return paths


def _band(runs, key):
    """Mean and min-max of eval return over runs, on the first run's x values."""
    length = min(len(run) for run in runs)
    returns = np.array([[record['eval_return'] for record in run[:length]] for run in runs])
    x = np.array([np.mean([run[i][key] for run in runs]) for i in range(length)])
    return x, returns.mean(0), returns.min(0), returns.max(0)

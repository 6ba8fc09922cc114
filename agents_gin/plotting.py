"""Learning curves from the metrics.jsonl that the training loop writes.

Runs are grouped by what they were launched with: the config files and the
bindings in the first line of their `command` file, leaving out the seed (and
the run directory and timestamp). So the seeds of one setting of a sweep make
one curve, and each setting its own; the legend names the bindings that differ
between the curves.
"""

import collections
import json
import os
import shlex

import numpy as np

SEED_BINDING = 'train.seed'


def read_metrics(run_dir):
    """The evaluation records of one run, in order."""
    with open(os.path.join(run_dir, 'metrics.jsonl')) as file:
        return [json.loads(line) for line in file if line.strip()]


def group_name(run_dir):
    """The config name of a run directory '<timestamp or seed>-<config>'."""
    name = os.path.basename(os.path.normpath(run_dir))
    return name.split('-', 1)[1] if '-' in name else name


def launch_settings(run_dir):
    """(config names, {binding: value}) the run was started with, the seed left out."""
    path = os.path.join(run_dir, 'command')
    if not os.path.exists(path):
        return (group_name(run_dir),), {}
    with open(path) as file:
        words = shlex.split(file.readline())
    files, bindings = [], {}
    for index, word in enumerate(words):
        flag, equals, value = word.partition('=')
        if not equals and index + 1 < len(words):
            value = words[index + 1]  # '--flag value' form.
        if flag == '--gin_file':
            files.append(os.path.splitext(os.path.basename(value))[0])
        elif flag in ('--gin_param', '--gin_bindings'):
            name, _, literal = value.partition('=')
            if name.strip() != SEED_BINDING:
                bindings[name.strip()] = literal.strip()  # The last binding of a name wins.
    return tuple(files) or (group_name(run_dir),), bindings


def group_runs(run_dirs):
    """{label: [run dirs]}: one group per launch setting, labelled by what differs."""
    keyed = collections.defaultdict(list)
    for run_dir in run_dirs:
        files, bindings = launch_settings(run_dir)
        keyed[files, tuple(sorted(bindings.items()))].append(run_dir)
    keys = list(keyed)
    differing = sorted({name for _, bindings in keys for name, value in bindings
                        if any(dict(other).get(name) != value for _, other in keys)})
    show_files = len({files for files, _ in keys}) > 1 or not differing
    groups = {}
    for files, bindings in sorted(keys):
        values = dict(bindings)
        parts = ['+'.join(files)] if show_files else []
        parts += [f'{name}={values.get(name, "default")}' for name in differing]
        groups[', '.join(parts)] = keyed[files, bindings]
    return groups


def plot(run_dirs, out, title=None):
    """Draws return vs env steps and vs seconds per group; returns the written paths."""
    import matplotlib  # Imported here: plotting is optional for training.

    matplotlib.use('Agg')
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, 2, figsize=(11, 4))
    for name, folders in group_runs(run_dirs).items():
        runs = [read_metrics(folder) for folder in folders]
        for axis, key in zip(axes, ('env_steps', 'seconds')):
            x, mean, low, high = _band(runs, key)
            line, = axis.plot(x, mean, label=f'{name} ({len(runs)} runs)')
            axis.fill_between(x, low, high, alpha=0.2, color=line.get_color())
    for axis, label in zip(axes, ('env steps', 'wall-clock seconds')):
        axis.set_xlabel(label)
        axis.set_ylabel('eval return')
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize='small')
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    paths = [f'{out}.png', f'{out}.svg']
    for path in paths:
        figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return paths


def find_runs(patterns):
    """Run directories from glob patterns; a folder without metrics.jsonl is searched below.

    Raises:
      ValueError: naming a pattern that matches nothing or no run.
    """
    import glob

    found = []
    for pattern in patterns:
        matches = sorted(glob.glob(os.path.expanduser(pattern)))
        runs = []
        for path in matches:
            if os.path.exists(os.path.join(path, 'metrics.jsonl')):
                runs.append(path)
            elif os.path.isdir(path):  # A sweep root or a --logdir: every run below it.
                runs += sorted(os.path.dirname(metrics) for metrics in glob.glob(
                    os.path.join(path, '**', 'metrics.jsonl'), recursive=True))
        if not runs:
            what = 'nothing' if not matches else 'no run directory (none holds metrics.jsonl)'
            raise ValueError(f'--runs={pattern!r} matches {what}')
        found += [run for run in runs if run not in found]
    return found


def _band(runs, key):
    """Mean and min-max of eval return over runs, up to the shortest run's length."""
    length = min(len(run) for run in runs)
    returns = np.array([[record['eval_return'] for record in run[:length]] for run in runs])
    x = np.array([np.mean([run[i][key] for run in runs]) for i in range(length)])
    return x, returns.mean(0), returns.min(0), returns.max(0)

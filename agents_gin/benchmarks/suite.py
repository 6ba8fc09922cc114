"""Resumable learning suites: tasks x seeds as sweep runs, collected into one JSON.

Every (task, seed) is a one-run sweep (`agents_gin.sweep.run_sweep`) under
`<root>/<task>`, so running a suite again skips finished runs and resumes
interrupted ones from their checkpoints. Only finished runs reach the JSON.
The suite's own bookkeeping is one file per run beside its run directory,
`seed<k>.commits`: the code version of every launch (start and resumes).
"""

import concurrent.futures
import datetime
import json
import os
import statistics
import subprocess

from agents_gin import plotting, sweep

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, 'agents_gin', 'benchmarks', 'results')


def code_version():
    """The commit the runs use: $AGENTS_GIN_COMMIT, or this tree's HEAD (+'-dirty')."""
    if os.environ.get('AGENTS_GIN_COMMIT'):
        return os.environ['AGENTS_GIN_COMMIT']
    try:
        head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'
    return head + ('-dirty' if dirty else '')


def run_dir(root, task, config, seed):
    """Where the run of `task` with `seed` lives (the sweep's layout)."""
    return sweep.run_directory(os.path.join(root, task), [], seed, _config_name(config))


def run_suite(tasks, seeds, root, parallel, params=()):
    """Runs (or resumes) every task x seed, `parallel` at a time; returns the errors.

    Args:
      tasks: {task name: config file}.
      seeds: seeds, each run for every task; seed-major, so every task gets a
        first seed before any gets a second.
      root: parent of the task folders (outside the repository for long runs).
      parallel: runs at once.
      params: bindings for every run (e.g. the step budget).

    Returns:
      {(task, seed): error text} for the runs that failed.
    """
    if parallel < 1:
        raise ValueError(f'parallel must be >= 1, got {parallel}')
    root = os.path.abspath(root)
    work = [(task, seed) for seed in seeds for task in tasks]

    def launch(item):
        task, seed = item
        directory = run_dir(root, task, tasks[task], seed)
        if os.path.exists(os.path.join(directory, 'finished.json')):
            return None
        os.makedirs(os.path.dirname(directory), exist_ok=True)
        with open(_commits_path(directory), 'a') as file:
            file.write(f'{datetime.datetime.now(datetime.timezone.utc).isoformat()} '
                       f'{code_version()}\n')
        rows = sweep.run_sweep([os.path.join(ROOT, tasks[task])], {}, [seed],
                               os.path.join(root, task), workers=1, extra_params=list(params))
        if _finished(directory):
            print(f'{task} seed {seed}: finished', flush=True)
            return None
        error = rows[0].get('error') if rows else None
        print(f'{task} seed {seed}: not finished: {error}', flush=True)
        return f'{task} seed {seed} did not finish: {error}'

    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        outcomes = list(pool.map(launch, work))
    return {item: error for item, error in zip(work, outcomes) if error}


def collect(tasks, seeds, root):
    """The JSON rows of the finished runs, in task then seed order."""
    rows = []
    for task, config in tasks.items():
        for seed in seeds:
            directory = run_dir(os.path.abspath(root), task, config, seed)
            if _finished(directory):
                rows.append(run_row(task, seed, directory))
    return rows


def run_row(task, seed, directory):
    """One finished run: final greedy eval, last-100 training return, curve, code version."""
    records = plotting.read_metrics(directory)
    last = records[-1]
    commits = _read_commits(directory)
    return {'task': task, 'seed': seed, 'env_steps': last['env_steps'],
            'eval_return': last['eval_return'],
            'eval_return_std': last.get('eval_return_std'),
            'train_return_last100': last.get('train_return_last100'),
            'seconds': last['seconds'],
            'curve': [[r['env_steps'], r['eval_return']] for r in records],
            'curve_seconds': [r['seconds'] for r in records],
            'git_commit': commits[0] if commits else 'unknown',
            'git_commits': commits, 'run_dir': directory}


def write_results(rows, name, out_dir=RESULTS, title=None):
    """Writes <out_dir>/<name>.json and one <name>_<task>.png per task; returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f'{name}.json')
    with open(path + '.tmp', 'w') as file:
        json.dump({'created': datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'), 'runs': rows}, file, indent=1)
    os.replace(path + '.tmp', path)
    paths = [path]
    for task, runs in by_task(rows).items():
        run_dirs = [row['run_dir'] for row in runs]
        out = os.path.join(out_dir, f'{name}_{task}')
        written = plotting.plot(run_dirs, out, title=f'{title or name}: {task}, '
                                f'{len(run_dirs)} seeds (mean, min-max)')
        for extra in written[1:]:  # Only the PNG is kept in the repository.
            os.remove(extra)
        paths.append(written[0])
    return paths


def summary_table(rows):
    """Markdown: per task, seeds, median and range of greedy eval and last-100 train return."""
    lines = ['| task | seeds | env steps | eval return median (min-max) | '
             'last-100 train return median (min-max) | median seconds |',
             '|---|---:|---:|---:|---:|---:|']
    for task, runs in by_task(rows).items():
        lines.append(f'| {task} | {len(runs)} | {runs[0]["env_steps"]:,} | '
                     f'{spread([r["eval_return"] for r in runs])} | '
                     f'{spread([r["train_return_last100"] for r in runs])} | '
                     f'{statistics.median(r["seconds"] for r in runs):.0f} |')
    return '\n'.join(lines)


def by_task(rows):
    """{task: its rows}, tasks in the order they first appear."""
    grouped = {}
    for row in rows:
        grouped.setdefault(row['task'], []).append(row)
    return grouped


def spread(values):
    """'median (min to max)' of the values that are not None; '-' without any."""
    values = [v for v in values if v is not None]
    if not values:
        return '-'
    return f'{statistics.median(values):,.0f} ({min(values):,.0f} to {max(values):,.0f})'


def _config_name(config):
    return os.path.splitext(os.path.basename(config))[0]


def _finished(directory):
    return os.path.exists(os.path.join(directory, 'finished.json'))


def _commits_path(directory):
    return os.path.join(os.path.dirname(directory), os.path.basename(directory) + '.commits')


def _read_commits(directory):
    """The code versions of a run's launches, first first, without repeats."""
    path = _commits_path(directory)
    if not os.path.exists(path):
        return []
    with open(path) as file:
        versions = [line.split()[-1] for line in file if line.strip()]
    return list(dict.fromkeys(versions))


def scalars(folder, tag):
    """The values of one scalar tag in the TensorBoard events under `folder`, in order."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.util import tensor_util

    events = event_accumulator.EventAccumulator(folder, size_guidance={'tensors': 0})
    events.Reload()
    if tag not in events.Tags().get('tensors', []):
        return []
    return [float(tensor_util.make_ndarray(event.tensor_proto)) for event in events.Tensors(tag)]

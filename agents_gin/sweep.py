"""Sweeps over gin bindings x seeds: one `launch.train` process per run.

Only `--gin_param` and the run directory differ between runs, so gin's global
state, TensorFlow and worker processes never leak from one run into another.
A run's directory is <root>/<binding=value,...>/seed<k>-<config>, its log
<root>/<binding=value,...>/seed<k>.log. Running the same sweep again skips
finished runs and resumes interrupted or failed ones.

Paths are the caller's: `root` and the gin files are resolved against the
working directory of the caller before anything starts (a bare config name
such as 'ppo_pendulum.gin' that is not there is looked up in the shipped
configs/), and the training processes run in that directory with absolute paths.

From a script:

    from agents_gin import sweep, sweep_space
    rows = sweep.run_sweep(['my_pendulum.gin'],
                           {'PPO.learning_rate': [1e-3, 3e-4], 'PPO.discount': [0.9, 0.95]},
                           seeds=[0, 1, 2], root='sweeps/lr_discount')
    rows = sweep.run_sweep(['ppo_pendulum.gin'],
                           {'PPO.learning_rate': sweep_space.loguniform(1e-4, 1e-2)},
                           seeds=[0], root='sweeps/lr', search='random', num_samples=8)

Each returned row is one run (the same rows as <root>/summary.csv): setting,
seed, status ('finished', 'failed', or 'stopped' early by a Ray Tune
scheduler), eval_return (the last evaluation), env_steps, steps_per_second,
attempts, node, run_dir, log and error (the last lines of the log of a failed
run). `summarize(rows)` aggregates them per setting.
"""

import concurrent.futures
import csv
import ctypes
import dataclasses
import datetime
import json
import os
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

from agents_gin import sweep_space

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, 'configs')
TAIL_LINES = 12  # Lines of a failed run's log that go into its row.
FIELDS = ['setting', 'seed', 'status', 'eval_return', 'env_steps', 'steps_per_second',
          'attempts', 'node', 'run_dir', 'log', 'error']
# TensorFlow's start-up chatter, left out of a failed run's error.
NOISE = re.compile(r'[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] |WARNING: All log messages before absl')
# Markers the sweep writes into a run's log around each attempt.
ATTEMPT, EXIT, STOPPED = '[sweep] attempt', '[sweep] exit code', '[sweep] stopped'

# Kept importable under their old names.
grid_settings = sweep_space.grid_settings
random_settings = sweep_space.random_settings


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run of a sweep; every path is absolute."""

    setting: tuple  # ((binding, value), ...)
    seed: int
    run_dir: str
    gin_files: tuple
    extra_params: tuple
    cwd: str  # The caller's working directory: relative paths in bindings mean it.

    @property
    def name(self):
        """The setting's folder name."""
        return setting_name(self.setting)

    @property
    def log(self):
        """The run's log: every attempt's output, appended."""
        return os.path.join(os.path.dirname(self.run_dir), f'seed{self.seed}.log')


def setting_name(setting):
    """A folder name for one setting, e.g. 'PPO.discount=0.9,PPO.learning_rate=0.001'."""
    if not setting:
        return 'default'
    text = ','.join(f'{name}={value}' for name, value in setting)
    return ''.join(c if c.isalnum() or c in '.=,_-+' else '_' for c in text)


def run_directory(root, setting, seed, config):
    """Where one run of the sweep lives."""
    return os.path.join(os.path.abspath(os.path.expanduser(root)), setting_name(setting),
                        f'seed{seed}-{config}')


def resolve_gin_file(path, cwd):
    """The absolute path of a gin file given in `cwd`, else of a shipped config of that name."""
    expanded = os.path.expanduser(path)
    candidates = [os.path.join(cwd, expanded)]
    if not os.path.isabs(expanded):
        candidates.append(os.path.join(CONFIGS, expanded))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    if os.path.isabs(expanded):
        raise ValueError(f'gin file not found: {path!r}')
    raise ValueError(f'gin file not found: {path!r} (looked in {cwd} and {CONFIGS})')


def plan_runs(gin_files, settings, seeds, root, extra_params=(), cwd=None):
    """The runs of `settings` x `seeds`, with every path resolved against `cwd`."""
    cwd = os.path.abspath(cwd or os.getcwd())
    if not gin_files or isinstance(gin_files, str):
        raise ValueError(f'gin_files must be a non-empty list of paths, got {gin_files!r}')
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f'seeds must be a non-empty list of integers, got {seeds!r}')
    if not root or not isinstance(root, str):
        raise ValueError(f'root must be a folder path, got {root!r}')
    files = tuple(resolve_gin_file(path, cwd) for path in gin_files)
    root = os.path.join(cwd, os.path.expanduser(root))
    config = os.path.splitext(os.path.basename(files[-1]))[0]
    return [Run(tuple(setting), seed, run_directory(root, setting, seed, config), files,
                tuple(extra_params), cwd)
            for setting in settings for seed in seeds]


def run_sweep(gin_files, grid, seeds, root, workers=None, extra_params=(), search='grid',
              num_samples=None, search_seed=0, backend='local', ray_options=None):
    """Runs (or resumes) every setting x seed; returns one row per run and writes summary.csv.

    Args:
      gin_files: config files given to every run: paths relative to the working
        directory, absolute paths, or names of shipped configs ('ppo_pendulum.gin').
      grid: {binding: values}; values a list (gin literals; strings quoted) or, for
        random search, a `sweep_space` distribution.
      seeds: one run per seed per setting.
      root: the sweep's folder (relative to the working directory or absolute).
      workers: local runs at once; default the machine's core count.
      extra_params: bindings given to every run.
      search: 'grid' (every combination) or 'random' (`num_samples` settings drawn
        from the space with `search_seed`; the same seed draws the same settings).
      backend: 'local' (a process pool here) or 'ray' (each run a Ray Tune trial;
        `pip install -e '.[ray]'`); see `sweep_ray.RayOptions` for cluster address,
        resources, retries and ASHA early stopping.
      ray_options: a `sweep_ray.RayOptions` for backend='ray'.

    Returns:
      One dict per run, with the keys in FIELDS.

    Raises:
      ValueError: a bad argument, a gin file that does not exist, or a distribution
        in a grid search; raised before any run starts.
    """
    if search == 'grid':
        settings = sweep_space.grid_settings(grid)
    elif search == 'random':
        settings = sweep_space.random_settings(grid, num_samples, search_seed)
    else:
        raise ValueError(f"search must be 'grid' or 'random', got {search!r}")
    if backend not in ('local', 'ray'):
        raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}")
    if ray_options is not None and backend != 'ray':
        raise ValueError("ray_options (cluster, retries, ASHA) need backend='ray'")
    runs = plan_runs(gin_files, settings, seeds, root, extra_params)
    root = os.path.dirname(os.path.dirname(runs[0].run_dir))
    os.makedirs(root, exist_ok=True)
    if backend == 'ray':
        from agents_gin import sweep_ray  # Ray is optional; the local path never imports it.

        sweep_ray.run_trials(runs, root, ray_options or sweep_ray.RayOptions())
    else:
        with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
            list(pool.map(launch_run, runs))
    rows = [read_result(run) for run in runs]
    write_csv(os.path.join(root, 'summary.csv'), rows)
    from agents_gin import sweep_hparams

    sweep_hparams.write(root, runs, rows, sorted(grid))
    return rows


def launch_run(run, on_record=None, node=None):
    """Runs one training process for `run` unless it has finished; returns its exit status.

    Args:
      run: the Run.
      on_record: called with each new metrics.jsonl record while the run trains
        (Ray Tune's report); if it raises (a scheduler stopping the trial), the
        training process is stopped with SIGTERM, which checkpoints, and the
        exception propagates.
      node: where this runs, for the log; default the host name.
    """
    if os.path.exists(os.path.join(run.run_dir, 'finished.json')):
        return 0
    command = [sys.executable, '-m', 'launch.train', f'--logdir={os.path.dirname(run.run_dir)}',
               f'--timestamp=seed{run.seed}', f'--seed={run.seed}']
    if not os.path.exists(os.path.join(run.run_dir, 'config.gin')):  # Else it resumes.
        command += [f'--gin_file={path}' for path in run.gin_files]
        command += [f'--gin_param={name} = {_literal(value)}' for name, value in run.setting]
        command += [f'--gin_param={param}' for param in run.extra_params]
    os.makedirs(os.path.dirname(run.run_dir), exist_ok=True)
    # launch.train must import from this checkout whatever the working directory.
    path = os.pathsep.join(p for p in (ROOT, os.environ.get('PYTHONPATH')) if p)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=path)
    cwd = run.cwd if os.path.isdir(run.cwd) else ROOT  # A cluster node may lack the folder.
    attempt = len(_attempts(run.log)) + 1
    with open(run.log, 'a') as log:
        log.write(f'{ATTEMPT} {attempt} on {node or socket.gethostname()} at '
                  f'{datetime.datetime.now().isoformat(timespec="seconds")}\n'
                  f'[sweep] cwd {cwd}\n[sweep] command {shlex.join(command)}\n')
        log.flush()
        process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                   env=env, preexec_fn=_die_with_parent)
        reported = [0]
        try:
            while on_record is not None and process.poll() is None:
                time.sleep(0.5)
                _report_new_records(run, reported, on_record)
            code = process.wait()
        except BaseException as error:
            # Marked first: Ray may end this thread at any moment after stopping the trial.
            log.write(f'{STOPPED} by {type(error).__name__} in the sweep (a scheduler or an '
                      'interrupt); the run got SIGTERM\n')
            log.flush()
            _terminate(process)
            raise
        log.write(f'{EXIT} {code}\n')
    if on_record is not None:
        _report_new_records(run, reported, on_record)
    return code


def _die_with_parent():
    """In the child: SIGTERM when the launching thread dies (a killed Ray trial, a crash)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _terminate(process):
    """SIGTERM (the run checkpoints and exits), then SIGKILL if it does not within 60 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _report_new_records(run, reported, on_record):
    """Passes the metrics.jsonl records after the first reported[0] to on_record."""
    records = _records(run.run_dir)
    for record in records[reported[0]:]:
        reported[0] += 1
        on_record(record)


def _records(run_dir):
    """The complete lines of metrics.jsonl, parsed; [] if there is none yet."""
    path = os.path.join(run_dir, 'metrics.jsonl')
    if not os.path.exists(path):
        return []
    with open(path) as file:
        return [json.loads(line) for line in file if line.endswith('\n') and line.strip()]


def mark_stopped(run, reason):
    """Notes in the log that the last attempt was stopped, unless it recorded its end."""
    attempts = _attempts(run.log)
    if attempts and _end(attempts[-1]) is None:
        with open(run.log, 'a') as log:
            log.write(f'{STOPPED} by {reason}\n')


def _end(lines):
    """The line that recorded how an attempt ended (the run may print after it), or None."""
    ends = [line for line in lines if line.startswith((EXIT, STOPPED))]
    return ends[-1] if ends else None


def _attempts(log_path):
    """The log's lines grouped per attempt: [[line, ...], ...]; [] for no log."""
    if not os.path.exists(log_path):
        return []
    attempts = []
    with open(log_path, errors='replace') as file:
        for line in file:
            if line.startswith(ATTEMPT):
                attempts.append([])
            if attempts:
                attempts[-1].append(line.rstrip('\n'))
    return attempts


def read_result(run):
    """The row of one run, read from its run directory and log."""
    records = _records(run.run_dir)
    last = records[-1] if records else {}
    attempts = _attempts(run.log)
    lines = attempts[-1] if attempts else []
    row = dict.fromkeys(FIELDS, None)
    row.update(setting=run.name, seed=run.seed, attempts=len(attempts),
               node=lines[0].split(' on ', 1)[1].rsplit(' at ', 1)[0] if lines else '',
               run_dir=run.run_dir, log=run.log, error='',
               eval_return=last.get('eval_return'), env_steps=last.get('env_steps'))
    if last.get('seconds'):
        row['steps_per_second'] = round(last['env_steps'] / last['seconds'], 1)
    finished = os.path.join(run.run_dir, 'finished.json')
    if os.path.exists(finished):
        with open(finished) as file:
            row.update(status='finished', eval_return=json.load(file)['eval_return'])
    elif lines and (_end(lines) or '').startswith(STOPPED):
        row['status'] = 'stopped'
    else:
        row['status'] = 'failed'
        row['error'] = _failure(lines)
    return row


def _failure(lines):
    """What went wrong in the last attempt: its exit status and the last lines of its output."""
    if not lines:
        return 'never started'
    end = _end(lines) or ''
    if end.startswith(EXIT):
        status = f'exit code {end[len(EXIT):].strip()}'
        if status == 'exit code 0':
            status += ' without finished.json'
    else:
        status = 'no exit status recorded (the process running the sweep died)'
    output = [line for line in lines
              if line.strip() and not line.startswith('[sweep]') and not NOISE.match(line)]
    return '\n'.join([status + ':'] + output[-TAIL_LINES:])


def _literal(value):
    """A gin literal for a value; strings are quoted unless they are references."""
    if isinstance(value, str) and not value.startswith(('@', '%')):
        return repr(value)
    return str(value)


def summarize(rows):
    """One row per setting: counts per status and the mean and median of eval returns."""
    by_setting = {}
    for row in rows:
        by_setting.setdefault(row['setting'], []).append(row)
    summary = []
    for name, runs in by_setting.items():
        returns = [r['eval_return'] for r in runs
                   if r['status'] == 'finished' and r['eval_return'] is not None]
        summary.append({
            'setting': name, 'seeds': len(runs),
            **{status: sum(r['status'] == status for r in runs)
               for status in ('finished', 'failed', 'stopped')},
            'mean_return': statistics.mean(returns) if returns else None,
            'median_return': statistics.median(returns) if returns else None,
            'returns': ' '.join(f'{r:.1f}' for r in returns)})
    return summary


def write_csv(path, rows):
    """Writes rows (dicts with the keys of the first) as CSV."""
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    temporary = f'{path}.{os.getpid()}-{threading.get_ident()}.tmp'
    with open(temporary, 'w', newline='') as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)  # Readers never see half a file.


def read_csv(path):
    """The rows of a summary.csv, as strings."""
    with open(path, newline='') as file:
        return list(csv.DictReader(file))


def format_table(rows):
    """The per-setting summary of run rows, as a markdown table."""
    lines = ['| setting | finished/seeds | failed | stopped | mean return | median return '
             '| returns |', '|---|---:|---:|---:|---:|---:|---|']
    for row in summarize(rows):
        mean = '-' if row['mean_return'] is None else f'{row["mean_return"]:.1f}'
        median = '-' if row['median_return'] is None else f'{row["median_return"]:.1f}'
        lines.append(f'| {row["setting"]} | {row["finished"]}/{row["seeds"]} | '
                     f'{row["failed"]} | {row["stopped"]} | {mean} | {median} | '
                     f'{row["returns"]} |')
    return '\n'.join(lines)


def format_failures(rows):
    """Which runs failed, where their logs are, and their errors; '' when none did."""
    failed = [row for row in rows if row['status'] == 'failed']
    if not failed:
        return ''
    parts = [f'{len(failed)} of {len(rows)} runs failed:']
    for row in failed:
        parts.append(f'- {row["setting"]} seed {row["seed"]}: log {row["log"]}\n  '
                     + row['error'].replace('\n', '\n  '))
    return '\n'.join(parts)

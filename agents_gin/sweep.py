"""Sweeps over gin bindings x seeds: one `launch.train` process per run.

Only `--gin_param` and the run directory differ between runs, so gin's global
state, TensorFlow and worker processes never leak from one run into another.
A run's directory is <root>/<binding=value,...>/seed<k>-<config>. Running the
same sweep again skips finished runs and resumes interrupted ones.

From a script:

    from agents_gin.sweep import run_sweep
    rows = run_sweep(['configs/ppo_pendulum.gin'],
                     {'PPO.learning_rate': [1e-3, 3e-4], 'PPO.discount': [0.9, 0.95]},
                     seeds=[0, 1, 2], root='runs/lr_discount')
"""

import concurrent.futures
import csv
import itertools
import json
import os
import random
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def grid_settings(grid):
    """Every combination of the values in {binding: [values]}, as lists of (binding, value)."""
    names = sorted(grid)
    return [list(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]


def random_settings(grid, count, seed=0):
    """`count` combinations drawn uniformly (without repeats) from the grid."""
    settings = grid_settings(grid)
    return random.Random(seed).sample(settings, min(count, len(settings)))


def setting_name(setting):
    """A folder name for one setting, e.g. 'PPO.discount=0.9,PPO.learning_rate=0.001'."""
    if not setting:
        return 'default'
    text = ','.join(f'{name}={value}' for name, value in setting)
    return ''.join(c if c.isalnum() or c in '.=,_-+' else '_' for c in text)


def run_sweep(gin_files, grid, seeds, root, workers=None, extra_params=(), count=None,
              backend='local', ray_address=None, cpus_per_trial=1, max_failures=2):
    """Runs (or resumes) every setting x seed; returns and writes the summary rows.

    Args:
      gin_files: config files given to every run.
      grid: {binding: [values]}; values are written as gin literals (strings quoted).
      seeds: one run per seed per setting.
      root: the sweep's folder; summary.csv goes there.
      workers: runs at once; default the machine's core count.
      extra_params: bindings given to every run.
      count: draw this many settings at random instead of the full grid.
      backend: 'local' (a process pool here) or 'ray' (each run a Ray Tune trial;
        `pip install -e '.[ray]'`).
      ray_address: an existing Ray cluster ('auto' or host:port); None starts Ray in
        this process. On a cluster every node needs the repository and `root` at the
        same paths (a shared file system).
      cpus_per_trial: CPUs Ray reserves for a run: 1 plus its environment workers.
      max_failures: Ray retries a failed run this often; a retry resumes from the
        run directory.
    """
    settings = random_settings(grid, count) if count else grid_settings(grid)
    config = os.path.splitext(os.path.basename(gin_files[-1]))[0]
    runs = [(setting, seed) for setting in settings for seed in seeds]
    def launch(run):
        return _run(gin_files, run[0], run[1], root, config, extra_params)

    if backend == 'ray':
        _run_on_ray(launch, runs, root, ray_address, cpus_per_trial, max_failures)
    elif backend != 'local':
        raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}")
    workers = workers or os.cpu_count() or 1
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        # After Ray, every run is finished and this only reads the results.
        results = list(pool.map(launch, runs))
    rows = _summarize(settings, seeds, runs, results)
    _write_csv(os.path.join(root, 'summary.csv'), rows)
    return rows


def _run_on_ray(launch, runs, root, address, cpus_per_trial, max_failures):
    """Runs every run as a Ray Tune trial; a failed trial is retried and resumes."""
    try:
        import ray
        from ray import tune
    except ImportError as error:
        raise ImportError("The Ray backend needs Ray: pip install -e '.[ray]'") from error
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)

    def trial(config):
        result = launch(runs[config['run']])
        if 'error' in result:
            raise RuntimeError(result['error'])  # Tune retries; the retry resumes the run.
        return {'eval_return': result['eval_return']}

    tuner = tune.Tuner(
        tune.with_resources(trial, {'cpu': cpus_per_trial}),
        param_space={'run': tune.grid_search(list(range(len(runs))))},
        run_config=tune.RunConfig(
            name='tune', storage_path=os.path.abspath(os.path.join(root, '_ray')),
            failure_config=tune.FailureConfig(max_failures=max_failures), verbose=0))
    tuner.fit()


def run_directory(root, setting, seed, config):
    """Where one run of the sweep lives."""
    return os.path.join(root, setting_name(setting), f'seed{seed}-{config}')


def _run(gin_files, setting, seed, root, config, extra_params):
    """Launches one training process unless the run has finished; returns its result."""
    run_dir = run_directory(root, setting, seed, config)
    finished = os.path.join(run_dir, 'finished.json')
    if os.path.exists(finished):
        with open(finished) as file:
            return json.load(file)
    resuming = os.path.exists(os.path.join(run_dir, 'config.gin'))
    command = [sys.executable, '-m', 'launch.train',
               f'--logdir={os.path.dirname(run_dir)}', f'--timestamp=seed{seed}',
               f'--seed={seed}']
    if not resuming:
        command += [f'--gin_file={path}' for path in gin_files]
        command += [f'--gin_param={name} = {_literal(value)}' for name, value in setting]
        command += [f'--gin_param={param}' for param in extra_params]
    os.makedirs(os.path.dirname(run_dir), exist_ok=True)
    with open(os.path.join(os.path.dirname(run_dir), f'seed{seed}.log'), 'a') as log:
        code = subprocess.call(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
    if code or not os.path.exists(finished):
        return {'error': f'exit code {code}; see {log.name}'}
    with open(finished) as file:
        return json.load(file)


def _literal(value):
    return repr(value) if isinstance(value, str) else str(value)


def _summarize(settings, seeds, runs, results):
    by_setting = {}
    for (setting, _), result in zip(runs, results):
        by_setting.setdefault(setting_name(setting), []).append(result)
    rows = []
    for setting in settings:
        results = by_setting[setting_name(setting)]
        returns = [r['eval_return'] for r in results if r.get('eval_return') is not None]
        rows.append({'setting': setting_name(setting), 'seeds': len(seeds),
                     'finished': len(returns),
                     'mean_return': statistics.mean(returns) if returns else None,
                     'median_return': statistics.median(returns) if returns else None,
                     'returns': ' '.join(f'{r:.1f}' for r in returns)})
    return rows


def _write_csv(path, rows):
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    with open(path, 'w', newline='') as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def format_table(rows):
    """The summary as a markdown table."""
    lines = ['| setting | finished/seeds | mean return | median return | returns |',
             '|---|---:|---:|---:|---|']
    for row in rows:
        mean = '-' if row['mean_return'] is None else f'{row["mean_return"]:.1f}'
        median = '-' if row['median_return'] is None else f'{row["median_return"]:.1f}'
        lines.append(f'| {row["setting"]} | {row["finished"]}/{row["seeds"]} | {mean} | '
                     f'{median} | {row["returns"]} |')
    return '\n'.join(lines)

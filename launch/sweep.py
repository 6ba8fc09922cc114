r"""Runs a sweep over gin bindings x seeds, one training process per run.

  python -m launch.sweep --gin_file=configs/ppo_pendulum.gin \
      --grid='PPO.learning_rate=[1e-3, 3e-4]' --grid='PPO.discount=[0.9, 0.95]' \
      --seeds=0,1,2 --root=sweeps/lr

  python -m launch.sweep --gin_file=ppo_pendulum.gin --search=random --num_samples=8 \
      --grid='PPO.learning_rate=loguniform(1e-4, 1e-2)' --grid='PPO.discount=[0.9, 0.95]' \
      --backend=ray --scheduler=asha --root=sweeps/random

Paths are relative to the working directory; a bare config name not found
there is looked up in the shipped configs/. Running the same command again
skips finished runs and resumes the others. Writes <root>/summary.csv (one row
per run) and TensorBoard HParams (`tensorboard --logdir=<root>`). Exits 1 when
a run failed, naming it and its log, and 2 for a mistake in the flags.
See docs/sweeps.md.
"""

import os
import sys

from absl import app, flags

flags.DEFINE_multi_string('gin_file', None, 'Config files for every run.')
flags.DEFINE_multi_string('grid', [], "A binding and its values: 'PPO.discount=[0.9, 0.95]', "
                          "or a distribution for random search: 'PPO.learning_rate="
                          "loguniform(1e-4, 1e-2)' (also uniform, randint, choice).")
flags.DEFINE_multi_string('gin_param', [], 'Bindings for every run.')
flags.DEFINE_list('seeds', ['0'], 'Seeds; one run per seed and setting.')
flags.DEFINE_string('root', None, 'Folder of the sweep.')
flags.DEFINE_integer('workers', None, 'Local runs at once (default: one per core).')
flags.DEFINE_enum('search', 'grid', ['grid', 'random'], 'Every combination, or '
                  '--num_samples settings drawn at random.')
flags.DEFINE_integer('num_samples', None, 'Settings drawn by --search=random.')
flags.DEFINE_integer('search_seed', 0, 'Seed of the random search (the same seed draws the '
                     'same settings, so a rerun resumes them).')
flags.DEFINE_enum('backend', 'local', ['local', 'ray'], 'Where runs execute.')
flags.DEFINE_string('ray_address', None, "An existing Ray cluster ('auto' or host:port); "
                    'default: start Ray in this process.')
flags.DEFINE_float('cpus_per_trial', 1, 'CPUs Ray reserves per run (1 + env workers).')
flags.DEFINE_integer('max_failures', 2, 'Ray retries of a failed run (each resumes it).')
flags.DEFINE_enum('scheduler', 'none', ['none', 'asha'], 'Ray Tune early stopping: ASHA '
                  'stops runs whose eval return trails (needs --backend=ray).')
flags.DEFINE_integer('grace_period', 1, 'Evaluations before ASHA may stop a run.')
flags.DEFINE_integer('reduction_factor', 2, 'ASHA keeps the top 1/reduction_factor per rung.')
flags.DEFINE_integer('max_concurrent', None, 'Ray trials at once (default: as CPUs allow).')
FLAGS = flags.FLAGS


def parse_grid(entries):
    """{'NAME': values} from 'NAME=[v1, v2]' or 'NAME=loguniform(a, b)' strings."""
    from agents_gin import sweep_space

    grid = {}
    for entry in entries:
        name, equals, values = entry.partition('=')
        if not equals or not name.strip():
            raise ValueError(f"--grid={entry!r}: write NAME=VALUES, e.g. "
                             "'PPO.discount=[0.9, 0.95]'")
        try:
            grid[name.strip()] = sweep_space.parse_values(values)
        except ValueError as error:
            raise ValueError(f'--grid={entry!r}: {error}') from error
    return grid


def main(argv):
    """Runs the sweep, prints its summary and failures; exit status 1 if a run failed."""
    if len(argv) > 1:
        _refuse(f'unexpected arguments: {argv[1:]}')
    from agents_gin import sweep, sweep_ray

    try:
        seeds = [int(seed) for seed in FLAGS.seeds]
    except ValueError:
        _refuse(f'--seeds={",".join(FLAGS.seeds)}: seeds must be integers, e.g. --seeds=0,1,2')
    ray_flags = dict(cpus_per_trial=FLAGS.cpus_per_trial, max_failures=FLAGS.max_failures,
                     scheduler=None if FLAGS.scheduler == 'none' else FLAGS.scheduler,
                     grace_period=FLAGS.grace_period, reduction_factor=FLAGS.reduction_factor,
                     max_concurrent=FLAGS.max_concurrent)
    if FLAGS.backend == 'local' and (FLAGS.scheduler != 'none' or FLAGS.ray_address):
        _refuse('--scheduler and --ray_address need --backend=ray')
    options = (sweep_ray.RayOptions(address=FLAGS.ray_address, **ray_flags)
               if FLAGS.backend == 'ray' else None)
    try:
        rows = sweep.run_sweep(FLAGS.gin_file, parse_grid(FLAGS.grid), seeds, FLAGS.root,
                               FLAGS.workers, FLAGS.gin_param, search=FLAGS.search,
                               num_samples=FLAGS.num_samples, search_seed=FLAGS.search_seed,
                               backend=FLAGS.backend, ray_options=options)
    except ValueError as error:
        _refuse(str(error))
    print(sweep.format_table(rows))
    root = os.path.abspath(os.path.expanduser(FLAGS.root))
    print(f'\nOne row per run in {root}/summary.csv; compare them with '
          f'tensorboard --logdir={root}')
    failures = sweep.format_failures(rows)
    if failures:
        print(f'\n{failures}', file=sys.stderr)
        sys.exit(1)


def _refuse(message):
    """Exits with status 2 and one line naming the mistake, as launch.train does."""
    print(f'Error: {message}', file=sys.stderr, flush=True)
    sys.exit(2)


if __name__ == '__main__':
    flags.mark_flags_as_required(['gin_file', 'root'])
    app.run(main)

r"""Runs a grid (or random) sweep over gin bindings x seeds, one training process per run.

  python -m launch.sweep --gin_file=configs/ppo_pendulum.gin \
      --grid='PPO.learning_rate=[1e-3, 3e-4]' --grid='PPO.discount=[0.9, 0.95]' \
      --seeds=0,1,2 --root=runs/sweep

Running the same command again skips finished runs and resumes interrupted ones.
"""

import ast

from absl import app, flags

flags.DEFINE_multi_string('gin_file', [], 'Config files for every run.')
flags.DEFINE_multi_string('grid', [], "A binding and its values: 'PPO.discount=[0.9, 0.95]'.")
flags.DEFINE_multi_string('gin_param', [], 'Bindings for every run.')
flags.DEFINE_list('seeds', ['0'], 'Seeds; one run per seed and setting.')
flags.DEFINE_string('root', None, 'Folder of the sweep.')
flags.DEFINE_integer('workers', None, 'Runs at once (default: one per core).')
flags.DEFINE_integer('random', None, 'Draw this many settings at random from the grid.')
flags.DEFINE_enum('backend', 'local', ['local', 'ray'], 'Where runs execute.')
flags.DEFINE_string('ray_address', None, "An existing Ray cluster ('auto' or host:port); "
                    'default: start Ray in this process.')
flags.DEFINE_integer('cpus_per_trial', 1, 'CPUs Ray reserves per run (1 + env workers).')
flags.DEFINE_integer('max_failures', 2, 'Ray retries of a failed run (each resumes it).')
FLAGS = flags.FLAGS


def parse_grid(entries):
    """{'NAME': [values]} from 'NAME=[v1, v2]' strings."""
    grid = {}
    for entry in entries:
        name, _, values = entry.partition('=')
        try:
            parsed = ast.literal_eval(values.strip())
        except (ValueError, SyntaxError) as error:
            raise app.UsageError(f'--grid={entry!r}: values must be a Python list literal, '
                                 "e.g. 'PPO.discount=[0.9, 0.95]'") from error
        grid[name.strip()] = list(parsed) if isinstance(parsed, (list, tuple)) else [parsed]
    return grid


def main(argv):
    """Runs the sweep and prints its summary."""
    del argv
    from agents_gin import sweep

    rows = sweep.run_sweep(FLAGS.gin_file, parse_grid(FLAGS.grid),
                           [int(seed) for seed in FLAGS.seeds], FLAGS.root, FLAGS.workers,
                           FLAGS.gin_param, FLAGS.random, FLAGS.backend, FLAGS.ray_address,
                           FLAGS.cpus_per_trial, FLAGS.max_failures)
    print(sweep.format_table(rows))
    print(f'\nSummary written to {FLAGS.root}/summary.csv')


if __name__ == '__main__':
    flags.mark_flags_as_required(['gin_file', 'root'])
    app.run(main)

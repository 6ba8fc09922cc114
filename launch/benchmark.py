r"""Benchmarks against peers measured in the same run.

python -m launch.benchmark --mode=throughput
python -m launch.benchmark --mode=learning --task=pendulum
"""

import datetime
import json
import os
import platform
import sys

from absl import app, flags

flags.DEFINE_enum('mode', 'throughput', ['throughput', 'learning'], 'What to measure.')
flags.DEFINE_list('envs', ['Pendulum-v1', 'HalfCheetah-v5'], 'Env ids (throughput mode).')
flags.DEFINE_list('sizes', ['8', '32', '128'], 'Batch sizes N (throughput mode).')
flags.DEFINE_integer('repeats', 3, 'Interleaved repeats; the median is reported.')
flags.DEFINE_float('seconds', 1.0, 'Length of one timed window (throughput mode).')
flags.DEFINE_list('variants', [], 'Throughput variants to run, by name prefix (default: all).')
flags.DEFINE_string('json', None, 'Also write the throughput rows to this JSON file.')
flags.DEFINE_enum('task', 'pendulum', ['pendulum', 'cartpole', 'halfcheetah', 'paac_cartpole',
                                       'paac_pong', 'mujoco', 'time_to_score'],
                  'Training task (learning mode).')
# Learning mode, resumable suites (mujoco, paac_pong): run again to resume.
flags.DEFINE_string('root', None, 'Folder of the run directories (learning suites); keep it '
                    'outside the repository. Default ~/agents_gin_benchmarks/<task>.')
flags.DEFINE_integer('parallel', os.cpu_count() or 1, 'Runs at once (learning suites).')
flags.DEFINE_integer('steps', None, 'Env steps per run (learning suites; default: the '
                     "task's budget, 1M for mujoco).")
flags.DEFINE_list('suite_tasks', None, 'Only these tasks of the suite, e.g. hopper,ant.')
flags.DEFINE_string('results_dir', None, 'Where the JSON and plots go (default '
                    'agents_gin/benchmarks/results).')
flags.DEFINE_bool('collect_only', False, 'Write the JSON and plots from the finished runs; '
                  'start nothing.')
flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds (learning mode).')
flags.DEFINE_multi_string('gin_param', [], 'Extra bindings for our runs (learning mode).')
FLAGS = flags.FLAGS


def machine():
    """Host name, processor and core count, for the record."""
    return f'{platform.node()} {platform.processor() or platform.machine()} {os.cpu_count()} cores'


def result(rows):
    """The JSON document of a throughput run."""
    return {'date': str(datetime.date.today()), 'machine': machine(), 'rows': rows}


def main(argv):
    """Runs the chosen benchmark and prints a markdown table."""
    del argv
    print(f'# {datetime.date.today()} {machine()}')
    if FLAGS.mode == 'learning':
        from agents_gin.benchmarks import learning

        try:
            learning.validate(FLAGS.task, FLAGS.suite_tasks, FLAGS.parallel, FLAGS.steps)
        except ValueError as error:
            sys.exit(f'Error: {error}')
        learning.run_task(FLAGS.task, [int(seed) for seed in FLAGS.seeds], FLAGS.gin_param,
                          root=FLAGS.root, parallel=FLAGS.parallel, steps=FLAGS.steps,
                          suite_tasks=FLAGS.suite_tasks, results_dir=FLAGS.results_dir,
                          collect_only=FLAGS.collect_only)
        return
    from agents_gin.benchmarks import throughput  # noqa: I001 -- after flag parsing.
    from agents_gin import threads

    threads.configure_threads()
    try:
        variants = throughput.select(FLAGS.variants)
    except ValueError as error:
        raise app.UsageError(str(error)) from error
    print(throughput.HEADER)
    rows = []
    for env_id in FLAGS.envs:
        for size in FLAGS.sizes:
            rates = throughput.measure(env_id, int(size), FLAGS.repeats, FLAGS.seconds,
                                       variants)
            print(throughput.report(env_id, int(size), rates), flush=True)
            rows += throughput.rows(env_id, int(size), rates)
            if FLAGS.json:  # Rewritten after each cell: a long run keeps what it measured.
                with open(FLAGS.json, 'w') as file:
                    json.dump(result(rows), file, indent=1)
    print()
    print(throughput.pivot(result(rows)))


if __name__ == '__main__':
    app.run(main)

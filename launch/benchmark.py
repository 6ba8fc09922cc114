r"""Benchmarks against peers measured in the same run.

python -m launch.benchmark --mode=throughput
python -m launch.benchmark --mode=learning --task=pendulum
"""

import datetime
import os
import platform

from absl import app, flags

flags.DEFINE_enum('mode', 'throughput', ['throughput', 'learning'], 'What to measure.')
flags.DEFINE_list('envs', ['Pendulum-v1', 'HalfCheetah-v5'], 'Env ids (throughput mode).')
flags.DEFINE_list('sizes', ['8', '32', '128'], 'Batch sizes N (throughput mode).')
flags.DEFINE_integer('repeats', 3, 'Interleaved repeats; the median is reported.')
flags.DEFINE_float('seconds', 1.0, 'Length of one timed window (throughput mode).')
flags.DEFINE_enum('task', 'pendulum', ['pendulum', 'cartpole', 'halfcheetah', 'paac_cartpole',
                                       'paac_pong'],
                  'Training task (learning mode).')
flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds (learning mode).')
flags.DEFINE_multi_string('gin_param', [], 'Extra bindings for our runs (learning mode).')
FLAGS = flags.FLAGS


def main(argv):
    """Runs the chosen benchmark and prints a markdown table."""
    del argv
    print(f'# {datetime.date.today()} {platform.node()} {platform.processor() or ""} '
          f'{os.cpu_count()} cores')
    if FLAGS.mode == 'learning':
        from agents_gin.benchmarks import learning

        learning.benchmark(FLAGS.task, [int(seed) for seed in FLAGS.seeds], FLAGS.gin_param)
        return
    from agents_gin.benchmarks import throughput  # noqa: I001 -- after flag parsing.
    from agents_gin import threads

    threads.configure_threads()
    print(throughput.HEADER)
    for env_id in FLAGS.envs:
        for size in FLAGS.sizes:
            rates = throughput.measure(env_id, int(size), FLAGS.repeats, FLAGS.seconds)
            print(throughput.report(env_id, int(size), rates), flush=True)


if __name__ == '__main__':
    app.run(main)

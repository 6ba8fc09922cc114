r"""Benchmarks against peers measured in the same run.

python -m launch.benchmark --mode=throughput
python -m launch.benchmark --mode=learning --task=pendulum
"""

import datetime
import platform

from absl import app, flags

flags.DEFINE_enum('mode', 'throughput', ['throughput', 'learning'], 'What to measure.')
flags.DEFINE_list('envs', ['Pendulum-v1', 'HalfCheetah-v5'], 'Env ids (throughput mode).')
flags.DEFINE_list('sizes', ['8', '32', '128'], 'Batch sizes N (throughput mode).')
flags.DEFINE_integer('repeats', 3, 'Interleaved repeats; the median is reported.')
flags.DEFINE_float('seconds', 1.0, 'Length of one timed window (throughput mode).')
FLAGS = flags.FLAGS


def main(argv):
    """Runs the chosen benchmark and prints a markdown table."""
    del argv
    from agents_gin.benchmarks import throughput  # noqa: I001 -- after flag parsing.
    from agents_gin import threads

    threads.configure_threads()
    print(f'# {datetime.date.today()} {platform.node()} {platform.processor() or ""} '
          f'{__import__("os").cpu_count()} cores')
    print(throughput.HEADER)
    for env_id in FLAGS.envs:
        for size in FLAGS.sizes:
            rates = throughput.measure(env_id, int(size), FLAGS.repeats, FLAGS.seconds)
            print(throughput.report(env_id, int(size), rates), flush=True)


if __name__ == '__main__':
    app.run(main)

r"""Plots learning curves from run directories.

  python -m launch.plot --runs=runs/2026*-ppo_pendulum --out=pendulum

writes pendulum.png and pendulum.svg: evaluation return against env steps and
against wall-clock seconds, the mean over runs with their min-max spread. Runs
are grouped by the config name in their directory name (after the timestamp).
"""

import glob

from absl import app, flags

flags.DEFINE_list('runs', [], 'Run directories (glob patterns allowed).')
flags.DEFINE_string('out', 'curves', 'Output path without extension.')
flags.DEFINE_string('title', None, 'Figure title.')
FLAGS = flags.FLAGS


def main(argv):
    """Reads every run's metrics.jsonl and draws the figure."""
    del argv
    from agents_gin import plotting

    folders = sorted({path for pattern in FLAGS.runs for path in glob.glob(pattern)})
    if not folders:
        raise app.UsageError(f'No run directories match {FLAGS.runs}')
    for path in plotting.plot(folders, FLAGS.out, FLAGS.title):
        print(path)


if __name__ == '__main__':
    app.run(main)

r"""Plots learning curves from run directories.

  python -m launch.plot --runs='sweeps/lr' --runs='runs/2026*-ppo_pendulum' --out=pendulum

writes pendulum.png and pendulum.svg: evaluation return against env steps and
against wall-clock seconds, one curve per launch setting (config files and
bindings, the seed left out) with the mean over its runs and their min-max
spread. --runs repeats; each is a run directory, a glob pattern, or a folder
(a sweep root, a --logdir) whose runs below it are all taken.
"""

from absl import app, flags

flags.DEFINE_multi_string('runs', [], 'Run directories, glob patterns or folders of runs; '
                          'repeat the flag for more.')
flags.DEFINE_string('out', 'curves', 'Output path without extension.')
flags.DEFINE_string('title', None, 'Figure title.')
FLAGS = flags.FLAGS


def main(argv):
    """Reads every run's metrics.jsonl and draws the figure."""
    if len(argv) > 1:
        raise app.UsageError(f'Unexpected arguments: {argv[1:]}', exitcode=2)
    from agents_gin import plotting

    if not FLAGS.runs:
        raise app.UsageError('Give --runs, e.g. --runs=sweeps/lr', exitcode=2)
    try:
        folders = plotting.find_runs(FLAGS.runs)
    except ValueError as error:
        raise app.UsageError(str(error), exitcode=2) from error
    for name, runs in plotting.group_runs(folders).items():
        print(f'{name}: {len(runs)} runs')
    for path in plotting.plot(folders, FLAGS.out, FLAGS.title):
        print(path)


if __name__ == '__main__':
    app.run(main)

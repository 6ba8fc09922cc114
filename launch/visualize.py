r"""Renders episodes of a trained run to MP4 with their statistics as JSON.

  python -m launch.visualize --run_dir=runs/20261122T010334-ppo_pendulum

--run_dir is one run's folder (what launch.train printed as `new run ...`),
not train's --logdir, the folder that holds the runs. Videos and stats.json go
to --outdir, by default <run_dir>/videos.
"""

import json
import os
import sys
import traceback

# TensorFlow's C++ start-up banner is noise here; errors and warnings still show.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app, flags, logging  # noqa: E402

flags.DEFINE_string('run_dir', None, 'The run directory: <logdir>/<timestamp>-<config name>, '
                    'holding config.gin and checkpoints/.')
flags.DEFINE_string('logdir', None, 'Not used here: launch.train\'s parent folder of runs. '
                    'Refused with a pointer to --run_dir.')
flags.DEFINE_string('outdir', None, 'Where videos and stats.json go; default <run_dir>/videos.')
flags.DEFINE_string('checkpoint', None, 'A checkpoint prefix (<run_dir>/checkpoints/ckpt-<n>); '
                    'default: the latest.')
flags.DEFINE_integer('num_episodes', 3, 'Episodes to render.')
flags.DEFINE_integer('seed', 0, 'Seed of the first episode (one more per episode).')
flags.DEFINE_bool('show_traceback', False, 'Show the traceback of a refused launch.')
FLAGS = flags.FLAGS

USER_ERROR = 2  # Exit status of a refused launch, as in launch.train.
# Includes in a run's config.gin resolve against the shipped configs.
CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')


def main(argv):
    """Renders and prints the statistics; one Error: line for a wrong run directory."""
    if len(argv) > 1:
        raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
    logging.set_verbosity(logging.WARNING)
    from agents_gin import run_setup, visualize

    try:
        run_dir = _run_dir(visualize)
        stats = visualize.visualize(run_dir, FLAGS.outdir, FLAGS.checkpoint, FLAGS.num_episodes,
                                    seed=FLAGS.seed, search_paths=[CONFIGS])
    except run_setup.ConfigError as error:
        if FLAGS.show_traceback:
            traceback.print_exc()
        print(f'Error: {error}', flush=True)
        sys.exit(USER_ERROR)
    print(json.dumps(stats, indent=2))


def _run_dir(visualize):
    """The run directory from the flags; ConfigError for --logdir or none at all."""
    from agents_gin import run_setup

    if FLAGS.logdir is not None:
        path = os.path.expanduser(FLAGS.logdir)
        runs = visualize.runs_inside(path)
        example = runs[-1] if runs else (path if os.path.isdir(path) else '<logdir>/<run>')
        raise run_setup.ConfigError(
            f'launch.visualize takes --run_dir, one run\'s folder, not --logdir={path} '
            f'(launch.train\'s folder of runs): e.g. --run_dir={example}')
    if not FLAGS.run_dir:
        raise run_setup.ConfigError(
            f'--run_dir is required: {visualize.RUN_DIR_HELP}, '
            'e.g. --run_dir=runs/20261122T010334-ppo_pendulum')
    return os.path.expanduser(FLAGS.run_dir)


def run():
    """Console entry point."""
    app.run(main)


if __name__ == '__main__':
    run()

r"""Trains an agent from gin files and bindings.

  python -m launch.train --gin_file=configs/ppo_pendulum.gin \
      --gin_param='PPO.update_epochs = 10' --logdir=~/runs

The run directory is <logdir>/<timestamp>-<config name>. Passing the same
--logdir and --timestamp again resumes that run with its saved config.gin.
"""

import datetime
import glob
import os
import sys

# TensorFlow's C++ start-up banner is noise here; errors and warnings still show.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app, flags, logging

flags.DEFINE_multi_string('gin_file', [], 'Gin config files, parsed in order.')
flags.DEFINE_multi_string('gin_param', [], 'Gin bindings, applied after the files; the last '
                          'binding of a name wins.')
flags.DEFINE_alias('gin_bindings', 'gin_param')
flags.DEFINE_string('logdir', None, 'Parent folder of run directories.')
flags.DEFINE_string('timestamp', None, 'Run timestamp; an existing one resumes that run.')
flags.DEFINE_integer('seed', None, 'Seed; the same as binding train.seed.')
FLAGS = flags.FLAGS

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')


def main(argv):
    """Parses the config, prepares the run directory and trains."""
    if len(argv) > 1:
        raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
    logging.set_verbosity(logging.WARNING)  # The progress line is printed; TF logs INFO a lot.
    from agents_gin import run_setup  # noqa: I001 -- TensorFlow loads after flag parsing.

    logdir = os.path.expanduser(FLAGS.logdir)
    run_dir, resuming = _run_directory(logdir)
    files = [os.path.join(run_dir, 'config.gin')] if resuming else FLAGS.gin_file
    if not files:
        raise app.UsageError('Give at least one --gin_file, e.g. configs/ppo_pendulum.gin')
    bindings = list(FLAGS.gin_param)
    if FLAGS.seed is not None:
        bindings.append(f'train.seed = {FLAGS.seed}')
    try:
        run_setup.parse_config(files, bindings, search_paths=[CONFIGS])
    except run_setup.ConfigError as error:
        sys.exit(f'Error: {error}')
    run_setup.write_run_files(run_dir, sys.argv, resuming)
    print(f'{"Resuming" if resuming else "Starting"} run {run_dir}', flush=True)
    status = run_setup.train(run_dir)
    sys.exit(status)


def _run_directory(logdir):
    """Returns (run dir, whether it resumes an existing run)."""
    if FLAGS.timestamp:
        existing = sorted(glob.glob(os.path.join(logdir, f'{FLAGS.timestamp}-*')))
        existing = [path for path in existing if os.path.exists(os.path.join(path, 'config.gin'))]
        if existing:
            return existing[0], True
    timestamp = FLAGS.timestamp or datetime.datetime.now().strftime('%Y%m%dT%H%M%S')
    name = os.path.splitext(os.path.basename(FLAGS.gin_file[-1]))[0] if FLAGS.gin_file else 'run'
    return os.path.join(logdir, f'{timestamp}-{name}'), False


def run():
    """Console entry point."""
    flags.mark_flag_as_required('logdir')
    app.run(main)


if __name__ == '__main__':
    run()

r"""Trains an agent from gin files and bindings.

  python -m launch.train --gin_file=ppo_pendulum.gin \
      --gin_param='PPO.update_epochs = 10' --logdir=~/runs

Shipped configs are found by name from any folder; a relative path is looked
up in the current folder first. The run directory is
<logdir>/<timestamp>-<config name>; passing the same --logdir and --timestamp
again resumes that run with its saved config.gin. `--print_config` builds the
experiment, prints every parameter it uses and exits without a run directory.
"""

import datetime
import glob
import os
import sys
import traceback

# TensorFlow's C++ banner and warnings are noise here (a failed numpy_function would
# print its traceback before our one-line error); C++ errors still show.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app, flags, logging

flags.DEFINE_multi_string('gin_file', [], 'Gin config files, parsed in order. Shipped configs '
                          'can be named without a folder (ppo_pendulum.gin).')
flags.DEFINE_multi_string('gin_param', [], 'Gin bindings, applied after the files; the last '
                          'binding of a name wins.')
flags.DEFINE_alias('gin_bindings', 'gin_param')
flags.DEFINE_multi_string('gin_search_path', [], 'Folders searched for gin files and includes '
                          '(after the current folder and the including file\'s folder).')
flags.DEFINE_string('logdir', None, 'Parent folder of run directories.')
flags.DEFINE_string('timestamp', None, 'Run timestamp; an existing one resumes that run.')
flags.DEFINE_integer('seed', None, 'Seed; the same as binding train.seed.')
flags.DEFINE_bool('print_config', False, 'Build the experiment, print the complete resolved '
                  'config (defaults included) and exit without training.')
flags.DEFINE_bool('strict_bindings', False, 'Refuse to run when a binding is unused.')
flags.DEFINE_bool('show_traceback', False, 'Show the traceback of a refused launch.')
FLAGS = flags.FLAGS


def main(argv):
    """Parses the config, builds the experiment and trains it (or prints its config)."""
    if len(argv) > 1:
        raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
    logging.set_verbosity(logging.WARNING)  # The progress line is printed; TF logs INFO a lot.
    from agents_gin import run_setup  # noqa: I001 -- TensorFlow loads after flag parsing.

    try:
        run_dir, resuming = _prepare(run_setup)
    except run_setup.ConfigError as error:
        if FLAGS.show_traceback:
            traceback.print_exc()
        print(f'Error: {error}', flush=True)
        sys.exit(run_setup.USER_ERROR)

    def on_built():
        run_setup.report_unused_bindings(FLAGS.strict_bindings)
        if FLAGS.print_config:
            import gin
            print(gin.operative_config_str(), flush=True)
            return False
        run_setup.write_run_files(run_dir, sys.argv, resuming)
        if resuming:
            step = run_setup.latest_checkpoint_step(run_dir)
            print(f'resuming {run_dir} at env step {step}', flush=True)
        else:
            print(f'new run {run_dir}', flush=True)
        return True

    status = run_setup.train(run_dir, on_built, FLAGS.show_traceback)
    sys.exit(status)


def _prepare(run_setup):
    """Checks the flags, parses the config; returns (run dir, whether it resumes)."""
    resuming, run_dir = False, None
    if not FLAGS.print_config:
        if not FLAGS.logdir:
            raise run_setup.ConfigError('--logdir is required: the folder that holds run '
                                        'directories (or use --print_config).')
        logdir = os.path.abspath(os.path.expanduser(FLAGS.logdir))
        run_setup.check_logdir(logdir)
        run_dir, resuming = _run_directory(logdir)
    files = [os.path.join(run_dir, 'config.gin')] if resuming else FLAGS.gin_file
    if not files:
        raise run_setup.ConfigError('Give at least one --gin_file, e.g. '
                                    '--gin_file=ppo_pendulum.gin')
    bindings = list(FLAGS.gin_param)
    if FLAGS.seed is not None:
        bindings.append(f'train.seed = {FLAGS.seed}')
    run_setup.parse_config(files, bindings, search_paths=FLAGS.gin_search_path)
    return run_dir, resuming


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
    app.run(main)


if __name__ == '__main__':
    run()

"""What the launcher does around training: run directories, run files, exit codes.

A run directory appears only once the experiment is built: a launch that fails
before training (a bad value, env id, network or binding) leaves nothing in
`--logdir` that looks like a run, and exits with status 2.
"""

import json
import os
import shlex
import signal
import traceback

import gin

from agents_gin import gin_config
from agents_gin.checks import ConfigError, plain_message

# Kept here for callers that parse as the launcher does.
parse_config = gin_config.parse

USER_ERROR = 2  # Exit status of a launch refused before training, as for a usage error.


def check_logdir(logdir):
    """Raises ConfigError unless run directories can be created under `logdir`."""
    if os.path.exists(logdir) and not os.path.isdir(logdir):
        raise ConfigError(f'--logdir={logdir} is a file; give a folder for run directories.')
    existing = logdir
    while not os.path.exists(existing):
        existing = os.path.dirname(existing) or '.'
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f'--logdir={logdir} is not writable ({existing} does not allow '
                          'creating files); give a folder you can write to.')


def latest_checkpoint_step(run_dir):
    """The env step of the run's latest checkpoint (its number), or 0 without one."""
    state = os.path.join(run_dir, 'checkpoints', 'checkpoint')
    if not os.path.exists(state):
        return 0
    with open(state) as file:
        for line in file:
            if line.startswith('model_checkpoint_path:'):
                return int(line.split('-')[-1].strip().strip('"'))
    return 0


def write_run_files(run_dir, argv, resuming):
    """Writes config.gin (a new run only) and appends the command line to `command`."""
    os.makedirs(run_dir, exist_ok=True)
    if not resuming:
        _atomic_write(os.path.join(run_dir, 'config.gin'), gin.config_str())
    with open(os.path.join(run_dir, 'command'), 'a') as file:
        file.write(' '.join(shlex.quote(arg) for arg in ['python', '-m', 'launch.train']
                            + argv[1:]) + '\n')


def report_unused_bindings(strict):
    """Prints one warning line per unused binding; raises ConfigError if `strict`."""
    unused = gin_config.unused_bindings()
    for binding, reason in unused:
        print(f'Warning: binding {binding} is unused: {reason}.', flush=True)
    if strict and unused:
        raise ConfigError(f'{len(unused)} unused binding(s) with --strict_bindings: '
                          + ', '.join(binding for binding, _ in unused) + '.')


def train(run_dir, on_built, show_traceback=False):
    """Builds and runs the configured experiment; returns a process exit status.

    `on_built` runs once everything is built and before training; returning
    False stops there (status 0), raising ConfigError refuses the run.
    """
    from agents_gin import experiment
    from agents_gin.envs.errors import EnvWorkerError
    from agents_gin.loop import RunInterrupted

    try:
        result = experiment.train(run_dir, on_built=on_built)
    except ConfigError as error:  # BuildError included: nothing was trained.
        if show_traceback:
            traceback.print_exc()
        print(f'Error: {plain_message(error)}', flush=True)
        return USER_ERROR
    except RunInterrupted as interrupted:
        print(str(interrupted), flush=True)
        return 128 + interrupted.signum if interrupted.signum != signal.SIGINT else 130
    except (FloatingPointError, EnvWorkerError) as error:
        # Found during training: the message names the cause and the checkpoint to resume.
        print(f'Error: {plain_message(error)}', flush=True)
        return 1
    if result is None:  # on_built stopped before training.
        return 0
    summary = result if isinstance(result, dict) else {'eval_return': result}
    # Marks the run complete, for sweeps that are run again.
    _atomic_write(os.path.join(run_dir, 'finished.json'), json.dumps(summary))
    return 0


def _atomic_write(path, text):
    """Writes `text` to `path` so that a reader never sees half a file."""
    temporary = path + '.tmp'
    with open(temporary, 'w') as file:
        file.write(text)
    os.replace(temporary, path)

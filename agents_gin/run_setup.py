"""What the launcher does around training: parsing, run files, exit codes.

Parsing is strict and its errors name the file or binding and suggest a fix.
"""

import difflib
import inspect
import json
import logging as std_logging
import os
import re
import shlex
import signal

import gin
from absl import logging


class ConfigError(ValueError):
    """A config file or binding is wrong; the message names it and what would be right."""


def parse_config(files, bindings, search_paths=()):
    """Checks that every file exists, registers all configurables, parses strictly."""
    for path in files:
        if not os.path.exists(path) and not any(
                os.path.exists(os.path.join(folder, path)) for folder in search_paths):
            raise ConfigError(f'gin file not found: {path} (looked in {os.getcwd()} and '
                              f'{", ".join(search_paths)})')
    import agents_gin.configurables  # noqa: F401 -- registers every configurable.

    for folder in search_paths:
        gin.add_config_file_search_path(folder)
    # gin logs 'Path not found' for every include it then finds on a search path.
    root_logger = std_logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(std_logging.CRITICAL)
    try:
        # skip_unknown=False: a misspelled binding must fail, never be dropped.
        gin.parse_config_files_and_bindings(files, bindings, skip_unknown=False)
    except (ValueError, ImportError, SyntaxError, OSError) as error:
        raise ConfigError(_with_suggestion(str(error))) from error
    finally:
        root_logger.setLevel(level)


def write_run_files(run_dir, argv, resuming):
    """Writes config.gin (a new run only) and appends the command line to `command`."""
    os.makedirs(run_dir, exist_ok=True)
    if not resuming:
        _atomic_write(os.path.join(run_dir, 'config.gin'), gin.config_str())
    with open(os.path.join(run_dir, 'command'), 'a') as file:
        file.write(' '.join(shlex.quote(arg) for arg in ['python', '-m', 'launch.train']
                            + argv[1:]) + '\n')


def train(run_dir):
    """Runs the configured experiment; returns a process exit status."""
    from agents_gin import experiment
    from agents_gin.loop import RunInterrupted

    try:
        eval_return = experiment.train(run_dir)
    except RunInterrupted as interrupted:
        logging.warning('%s', interrupted)
        print(str(interrupted), flush=True)
        return 128 + interrupted.signum if interrupted.signum != signal.SIGINT else 130
    except FloatingPointError as error:
        print(f'Error: {error}', flush=True)
        return 1
    except experiment.BuildError as error:
        print(f'Error: {error}', flush=True)
        return 2
    # Marks the run complete, for sweeps that are run again.
    _atomic_write(os.path.join(run_dir, 'finished.json'),
                  json.dumps({'eval_return': eval_return}))
    return 0


def _atomic_write(path, text):
    temporary = path + '.tmp'
    with open(temporary, 'w') as file:
        file.write(text)
    os.replace(temporary, path)


def _with_suggestion(message):
    """Adds 'did you mean' to gin's unknown-configurable and unknown-parameter errors."""
    registry = gin.config._REGISTRY  # pylint: disable=protected-access
    unknown = re.search(r"No configurable matching '([\w.]+)'", message)
    if unknown:
        names = sorted({selector.split('.')[-1] for selector in registry._selector_map})
        close = difflib.get_close_matches(unknown.group(1).split('.')[-1], names, 3)
        if close:
            return f'{message}\nDid you mean: {", ".join(close)}?'
    parameter = re.search(r"Configurable '([\w.]+)' doesn't have a parameter named '(\w+)'",
                          message)
    if parameter:
        configurable = registry.get_match(parameter.group(1))
        if configurable is not None:
            target = configurable.wrapped
            target = target.__init__ if inspect.isclass(target) else target
            names = [name for name in inspect.signature(target).parameters if name != 'self']
            close = difflib.get_close_matches(parameter.group(2), names, 3)
            hint = f'Did you mean: {", ".join(close)}? ' if close else ''
            return f'{message}\n{hint}Parameters of {parameter.group(1)}: {", ".join(names)}'
    return message

"""Strict gin parsing: includes beside the including file, named errors, unused bindings.

gin-config 0.5.0 resolves an `include` against the working directory and the
registered search paths only, not the folder of the file that includes it, and
it reports unknown configurables but never bindings that no call used. This
module adds both, and turns gin's errors into one line that names the binding
and the one to use instead.
"""

import contextlib
import difflib
import inspect
import logging as std_logging
import os
import re

import gin

from agents_gin.checks import ConfigError

# The shipped configs: always searched last, so `--gin_file=ppo_pendulum.gin` works anywhere.
SHIPPED_CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               'configs')
# Parameters the framework passes itself, and the binding that is their one source.
FRAMEWORK_SOURCES = {
    'num_envs': 'train.num_envs', 'num_workers': 'train.num_workers', 'seed': 'train.seed',
    'total_steps': 'Loop.total_steps', 'eval_episodes': 'train.eval_episodes',
    'constructors': 'train.num_envs and make_env', 'observation_space': 'make_env',
    'action_space': 'make_env', 'run_dir': '--logdir', 'eval_seed': 'train.seed',
}
# Parameters that were renamed, and what replaced them.
RENAMED = {
    'learning_rate_decay_steps': 'learning_rate_decay (a fraction of Loop.total_steps, '
                                 'e.g. 1.0 to anneal over the whole run)',
}
# Literal values whose use can be compared with the operative config.
_LITERALS = (int, float, str, bool, tuple, list, dict, type(None))


def parse(files, bindings, search_paths=()):
    """Parses `files` then `bindings` strictly; raises ConfigError naming what is wrong.

    A relative file is looked up in the working directory, then in `search_paths`;
    an `include` inside a file is looked up beside that file first.
    """
    search_paths = [os.path.abspath(os.path.expanduser(path)) for path in search_paths]
    if SHIPPED_CONFIGS not in search_paths:
        search_paths.append(SHIPPED_CONFIGS)
    resolved = [_resolve(os.path.expanduser(path), [os.getcwd()] + search_paths)
                for path in files]
    import agents_gin.configurables  # noqa: F401 -- registers every configurable.

    for folder in search_paths:
        if folder not in gin.config._LOCATION_PREFIXES:  # pylint: disable=protected-access
            gin.add_config_file_search_path(folder)
    try:
        with _includes_beside_their_file(search_paths), _quiet_gin_logs():
            # skip_unknown=False: a misspelled binding must fail, never be dropped.
            gin.parse_config_files_and_bindings(resolved, bindings, skip_unknown=False)
    except (ValueError, ImportError, SyntaxError, OSError) as error:
        raise ConfigError(explain(str(error))) from error


def unused_bindings():
    """Bindings that no call used, as (binding name, reason) pairs, after the experiment ran.

    A binding is unused when its configurable was never called, or when the
    caller passed that parameter itself (gin then ignores the binding).
    """
    config = gin.config._CONFIG  # pylint: disable=protected-access
    operative = gin.config._OPERATIVE_CONFIG  # pylint: disable=protected-access
    found = []
    for (scope, selector), parameters in config.items():
        name = selector.split('.')[-1]
        prefix = f'{scope}/' if scope else ''
        used = operative.get((scope, selector))
        for parameter, value in parameters.items():
            binding = f'{prefix}{name}.{parameter}'
            if used is None:
                found.append((binding, f'{name} is never called in this experiment'))
            elif parameter not in used and isinstance(value, _LITERALS):
                found.append((binding, f'the caller of {name} passes {parameter} itself'))
    return sorted(found)


def explain(message):
    """The error message of gin, with the binding to use instead, or close names."""
    registry = gin.config._REGISTRY  # pylint: disable=protected-access
    denied = re.search(r"Configurable '([\w.]+)' has denylisted kwarg '(\w+)'", message)
    if denied:
        source = FRAMEWORK_SOURCES.get(denied.group(2), 'its caller')
        return (f'{denied.group(1)}.{denied.group(2)} cannot be bound: the framework passes '
                f'it. Set it with {source} instead.')
    unknown = re.search(r"No configurable matching '([\w.]+)'", message)
    if unknown:
        names = sorted({selector.split('.')[-1] for selector in registry._selector_map})
        close = difflib.get_close_matches(unknown.group(1).split('.')[-1], names, 3)
        if close:
            return f'{_first_line(message)} Did you mean: {", ".join(close)}?'
        return _first_line(message)
    parameter = re.search(r"Configurable '([\w.]+)' doesn't have a parameter named '(\w+)'",
                          message)
    if parameter:
        return _explain_parameter(registry, parameter.group(1), parameter.group(2), message)
    return message.strip()


def _explain_parameter(registry, selector, name, message):
    """Names the configurables that do have `name`, else close names and the parameter list."""
    text = f'{selector}.{name} is not a parameter of {selector}.'
    if name in RENAMED:
        return f'{text} It was renamed: bind {selector}.{RENAMED[name]}.'
    owners = sorted(other for other, params in _bindable_parameters(registry).items()
                    if name in params and other != selector)
    if name in FRAMEWORK_SOURCES:
        return f'{text} Set it with {FRAMEWORK_SOURCES[name]} instead.'
    if owners:
        return f'{text} Did you mean ' + ' or '.join(f'{owner}.{name}' for owner in owners) + '?'
    configurable = registry.get_match(selector)
    names = _bindable_parameters(registry).get(selector.split('.')[-1], [])
    if configurable is None:
        return _first_line(message)
    close = difflib.get_close_matches(name, names, 3)
    hint = f' Did you mean: {", ".join(close)}?' if close else ''
    return f'{text}{hint} Parameters of {selector}: {", ".join(names)}'


def _bindable_parameters(registry):
    """{configurable name: [parameters a binding may set]} over every registered configurable."""
    found = {}
    for selector in registry._selector_map:  # pylint: disable=protected-access
        configurable = registry.get_match(selector)
        target = configurable.wrapped
        target = target.__init__ if inspect.isclass(target) else target
        try:
            names = [name for name in inspect.signature(target).parameters
                     if name not in ('self', 'args', 'kwargs')]
        except (TypeError, ValueError):
            continue
        denied = set(configurable.denylist or ())
        found[selector.split('.')[-1]] = [name for name in names if name not in denied]
    return found


def _resolve(path, folders):
    """The first existing `folder/path` (or `path` itself if absolute); ConfigError if none."""
    if os.path.isabs(path):
        if os.path.exists(path):
            return path
    else:
        for folder in folders:
            candidate = os.path.join(folder, path)
            if os.path.exists(candidate):
                return os.path.abspath(candidate)
    raise ConfigError(f'gin file not found: {path} (looked in {", ".join(folders)}). '
                      'Shipped configs can be named without a folder, e.g. '
                      '--gin_file=ppo_pendulum.gin; add folders with --gin_search_path.')


@contextlib.contextmanager
def _includes_beside_their_file(search_paths):
    """Makes gin resolve each `include` beside the including file, then on the search paths.

    gin parses an include by calling the module-level `parse_config_file`, so
    wrapping that function for the duration of one parse is enough.
    """
    original = gin.config.parse_config_file
    including = []

    def parse_file(config_file, *args, **kwargs):
        folders = ([os.path.dirname(including[-1])] if including else []) + [os.getcwd()]
        path = _resolve(config_file, folders + list(search_paths))
        including.append(path)
        try:
            return original(path, *args, **kwargs)
        finally:
            including.pop()

    gin.config.parse_config_file = parse_file
    try:
        yield
    finally:
        gin.config.parse_config_file = original


@contextlib.contextmanager
def _quiet_gin_logs():
    """Hides gin's 'Path not found' logs for files it then finds elsewhere."""
    root_logger = std_logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(std_logging.CRITICAL)
    try:
        yield
    finally:
        root_logger.setLevel(level)


def _first_line(message):
    """The first line of gin's message, without the location lines it appends."""
    return message.strip().splitlines()[0]

"""The parent's gin config, adopted by a worker's child without TensorFlow.

The parent ships `gin.config_str()` to each child so that bindings of the
environment side (`make_env.env_id`, wrappers, ...) hold there too. The parent
parsed the config strictly already; the child registers only the environment
configurables and skips bindings of the others (PPO, networks) rather than
importing TensorFlow, which makes a worker start in about a second instead of
twenty.
"""

import importlib

import gin


def load_parent_config(gin_text):
    """Adopts the parent's gin config, minus the imports of TensorFlow-side modules.

    Every other `import` line must work here too: gin's lenient parse would
    skip a failing one silently and leave the worker without the configurables
    it brings, so it is imported first and a failure stops the worker's start
    naming the module.
    """
    import agents_gin.envs  # noqa: F401 -- registers the env configurables.

    kept = []
    for line in gin_text.splitlines():
        if _is_learner_import(line):
            continue
        module = _imported_module(line)
        if module is not None:
            _import_for_gin(module)
        kept.append(line)
    gin.clear_config()
    gin.parse_config('\n'.join(kept), skip_unknown=True)
    gin.finalize()


def _import_for_gin(module):
    """Imports a module named by a gin `import` line; a failure names the module."""
    try:
        importlib.import_module(module)
    except Exception as error:  # noqa: BLE001 -- any failure of the import counts.
        raise ImportError(
            f"The gin config's `import {module}` failed in the environment worker process "
            f'(it may be importable only in the parent): {type(error).__name__}: {error}'
        ) from error


def _imported_module(line):
    """The module of a gin `import a.b` or `import a.b as a2` line, else None."""
    words = line.split()
    if len(words) not in (2, 4) or words[0] != 'import' or (len(words) == 4 and
                                                            words[2] != 'as'):
        return None
    return words[1]


def _is_learner_import(line):
    """Whether a gin line imports a module the worker does not need.

    gin writes imports as `import a.b` or, in config_str(), `import a.b as a2`.
    """
    module = _imported_module(line)
    if module is None:
        return False
    if module.startswith('tensorflow') or module.startswith('launch'):
        return True
    return module.startswith('agents_gin') and not module.startswith('agents_gin.envs')

"""Builds one environment from gin bindings: env id, keyword arguments, wrappers."""

import sys

import gin
import gymnasium as gym
from absl import logging

from agents_gin import checks


@gin.configurable
def make_env(env_id=gin.REQUIRED, env_kwargs=None, wrappers=(), max_episode_steps=None,
             render_mode=None):
    """Makes `env_id` with gymnasium and applies `wrappers` in order.

    Args:
      env_id: a registered gymnasium id, such as 'Pendulum-v1' or 'ALE/Pong-v5'.
      env_kwargs: keyword arguments for `gymnasium.make`.
      wrappers: callables taking and returning an env, applied first to last;
        in gin, e.g. `[@ClipAction, @ConvertTo32Bit]`.
      max_episode_steps: episode length limit (gymnasium's TimeLimit); None
        keeps the id's registered limit.
      render_mode: e.g. 'rgb_array' for videos.
    """
    checks.integer('make_env.max_episode_steps', max_episode_steps, 1, optional=True)
    if env_kwargs is not None and not isinstance(env_kwargs, dict):
        checks.fail('make_env.env_kwargs', env_kwargs, "a dict such as {'frameskip': 1} or None")
    if not isinstance(wrappers, (list, tuple)) or not all(map(callable, wrappers)):
        checks.fail('make_env.wrappers', wrappers, 'a list of wrappers such as '
                    '[@gymnasium.wrappers.ClipAction]')
    _check_env_id(env_id)
    _route_mujoco_warnings(env_id)
    kwargs = dict(env_kwargs or {})
    if render_mode:
        kwargs['render_mode'] = render_mode
    env = gym.make(env_id, max_episode_steps=max_episode_steps, **kwargs)
    for wrapper in wrappers:
        env = wrapper(env)
    return env


def _check_env_id(env_id):
    """Raises ValueError naming the binding when gymnasium does not know `env_id`."""
    if isinstance(env_id, str) and env_id.startswith('ALE/'):
        _register_atari()
    try:
        gym.spec(env_id)
    except gym.error.Error as error:
        raise ValueError(
            f'Unknown environment id {env_id!r} (bound as make_env.env_id): {error}') from error


def _register_atari():
    """Registers the ALE/ ids; ale-py ships the ROMs."""
    try:
        import ale_py
    except ImportError as error:
        raise ValueError('Atari ids (ALE/...) need ale-py: pip install "agents_gin[atari]"'
                         ) from error
    gym.register_envs(ale_py)


def _route_mujoco_warnings(env_id):
    """Sends MuJoCo's warnings to Python logging instead of ./MUJOCO_LOG.TXT.

    MuJoCo's C library appends every warning (HalfCheetah's model triggers a
    `settotalmass` deprecation warning on each load) to MUJOCO_LOG.TXT in the
    current folder unless a user warning handler is installed. The handler is
    per process, so this runs wherever environments are made, worker processes
    included. mujoco is imported only for MuJoCo envs (or when already loaded):
    the import costs a quarter of a second.
    """
    if 'mujoco' not in sys.modules:
        try:
            entry_point = str(gym.spec(env_id).entry_point)
        except gym.error.Error:
            return
        if 'mujoco' not in entry_point.lower():
            return
    log_mujoco_warnings()


def log_mujoco_warnings():
    """Installs the handler that logs MuJoCo's warnings, in this process.

    For code that makes MuJoCo envs with `gymnasium.make` directly (make_env
    does this itself); keeps a handler someone else installed.
    """
    import mujoco

    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(_log_mujoco_warning)


_MUJOCO_WARNINGS_SEEN = set()


def _log_mujoco_warning(message):
    """MuJoCo's user warning handler: each distinct warning logged once per process.

    Every model load repeats a deprecation warning; 30 environments would
    print it 30 times.
    """
    message = message.strip()
    if message not in _MUJOCO_WARNINGS_SEEN:
        _MUJOCO_WARNINGS_SEEN.add(message)
        logging.warning('MuJoCo: %s (logged once per process)', message)

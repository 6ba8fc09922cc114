"""Shared fixtures: a clean gin config around every test."""

import os

import gin
import pytest

# Quiet TensorFlow's start-up banner in test output.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Off-screen MuJoCo rendering (videos) without a display; read when mujoco is imported.
if not os.environ.get('DISPLAY'):
    os.environ.setdefault('MUJOCO_GL', 'egl')
    os.environ.setdefault('PYOPENGL_PLATFORM', 'egl')


@pytest.fixture(autouse=True)
def clean_gin():
    """Clears gin before and after each test, so no binding leaks between tests."""
    gin.clear_config()
    yield
    gin.clear_config()

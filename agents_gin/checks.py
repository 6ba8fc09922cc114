"""Validation of bound values: one clear error naming the binding, the value and what is valid.

Configurables call these at the top of their constructors, so a bad value in a
config or a sweep fails before anything is built, with a message such as

    PPO.update_epochs = 2.5 is invalid: expected an integer >= 1.

Errors are ConfigError (a ValueError); the launcher prints them as one
`Error:` line and exits with status 2.
"""

import numbers


class ConfigError(ValueError):
    """A config file, binding or value is wrong; the message names it and what would be right."""


def fail(binding, value, expected):
    """Raises ConfigError for `binding = value`, saying what `expected` values are valid."""
    raise ConfigError(f'{binding} = {value!r} is invalid: expected {expected}.')


def integer(binding, value, minimum=None, maximum=None, optional=False):
    """Checks that `value` is an int (not a bool or float) within [minimum, maximum]."""
    if optional and value is None:
        return value
    expected = 'an integer' + _range_text(minimum, maximum, True, True)
    if optional:
        expected += ' or None'
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1e6 is a fine way to write a step count.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        fail(binding, value, expected)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        fail(binding, value, expected)
    return int(value)


def number(binding, value, low=None, high=None, low_open=False, high_open=False,
           optional=False):
    """Checks that `value` is a real number in the interval given by low/high (open or closed)."""
    if optional and value is None:
        return value
    expected = 'a number' + _range_text(low, high, not low_open, not high_open)
    if optional:
        expected += ' or None'
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        fail(binding, value, expected)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        fail(binding, value, expected)
    return float(value)


def choice(binding, value, choices):
    """Checks that `value` is one of `choices`."""
    if value not in choices:
        fail(binding, value, 'one of ' + ', '.join(repr(option) for option in choices))
    return value


def layers(binding, value):
    """Checks a tuple of positive layer sizes."""
    if (not isinstance(value, (tuple, list))
            or not all(isinstance(size, numbers.Integral) and not isinstance(size, bool)
                       and size >= 1 for size in value)):
        fail(binding, value, 'a tuple of positive integers, e.g. (64, 64)')
    return tuple(int(size) for size in value)


def relation(condition, message):
    """Raises ConfigError(message) unless `condition`: for checks that relate two bindings."""
    if not condition:
        raise ConfigError(message)


def plain_message(error):
    """The error's message without the lines gin appends ('In call to configurable ...')."""
    lines = str(error).splitlines()
    return '\n'.join(line for line in lines
                     if not line.strip().startswith('In call to configurable')).strip()


def _range_text(low, high, low_closed, high_closed):
    """' >= 1', ' in (0, 1]' and the like."""
    if low is not None and high is not None:
        return f' in {"[" if low_closed else "("}{low}, {high}{"]" if high_closed else ")"}'
    if low is not None:
        return f' {">=" if low_closed else ">"} {low}'
    if high is not None:
        return f' {"<=" if high_closed else "<"} {high}'
    return ''

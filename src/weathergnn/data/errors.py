"""Errors raised on bad input data (files, variables, times, options)."""

from __future__ import annotations

from typing import Any


class DataError(ValueError):
    """A dataset, file or data option is unusable.

    The message always says what is wrong; the optional keyword context (the
    file, variable, time or option at fault) is kept as attributes and appended
    to the message, e.g.
    ``variable 'temperature' not found; available: geopotential [file: a.nc; variable: temperature]``.

    Args:
        message: what is wrong and, where useful, how to fix it.
        file: path, URL or description of the source at fault.
        variable: variable name (WeatherBench2 name when known).
        time: offending time (any object with a readable ``str``).
        option: the argument or configuration option at fault.
    """

    def __init__(
        self,
        message: str,
        *,
        file: Any = None,
        variable: str | None = None,
        time: Any = None,
        option: str | None = None,
    ) -> None:
        self.file = None if file is None else str(file)
        self.variable = variable
        self.time = None if time is None else str(time)
        self.option = option
        context = [
            f"{key}: {value}"
            for key, value in (
                ("file", self.file),
                ("variable", variable),
                ("time", self.time),
                ("option", option),
            )
            if value is not None
        ]
        self.reason = message
        super().__init__(f"{message} [{'; '.join(context)}]" if context else message)

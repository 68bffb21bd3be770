"""Errors that the CLI reports as one line and a non-zero exit code."""


class ThermodiffError(Exception):
    """Bad input: a wrong path, a corrupt checkpoint, a value out of range. Shown as one line."""


class ConfigError(ThermodiffError):
    """A config value that is unknown, of the wrong type, or out of range."""


class CheckpointError(ThermodiffError):
    """A checkpoint or run directory that is missing, incomplete or corrupt."""


class DataError(ThermodiffError):
    """A data file that is missing, unreadable, of the wrong shape, or contains NaNs."""


def first_line(e: BaseException) -> str:
    """An exception as one line of an error message (CLI errors are one line)."""
    return str(e).splitlines()[0] if str(e).strip() else type(e).__name__


class ResourceError(ThermodiffError):
    """A size that needs more memory than the machine has (estimated before it is allocated)."""


class NonFiniteError(ThermodiffError):
    """A result that came out NaN or infinite (an input or a noise far outside the data's range)."""


class ShapeError(ThermodiffError):
    """A tensor whose shape is not the one the model, a mask or another tensor asks for."""

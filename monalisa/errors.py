"""The one exceptions module of monalisa.

Every error monalisa raises on purpose derives from :class:`MonalisaError`. The CLI prints
``str(error)`` as one line and exits with ``error.exit_code``: 2 for bad input (a file, a flag,
data the user can fix), 1 for a failure of monalisa itself (a check that did not pass).
Messages name the file or frame and say what to do.
"""

__all__ = [
    "MonalisaError",
    "InputError",
    "ShapeError",
    "MediaError",
    "NoFaceError",
    "DataError",
    "CheckpointError",
    "ConfigError",
    "IdentityPackError",
    "TrackFileError",
    "FrameError",
    "ModelFormatError",
    "BackendUnavailableError",
    "ExportError",
    "ExportMismatchError",
    "DivergedError",
]


class MonalisaError(Exception):
    """Root of monalisa's errors."""

    exit_code = 1


class InputError(MonalisaError):
    """Bad input the user can fix: a file, a flag, a data folder."""

    exit_code = 2


class ShapeError(InputError):
    """An array or tensor of the wrong shape; says the shape expected and the shape given."""

    def __init__(self, what, expected, actual):
        self.expected = tuple(expected)
        self.actual = tuple(actual)
        super().__init__(f"{what}: expected shape {list(self.expected)}, got {list(self.actual)}")


class MediaError(InputError):
    """A video or image that cannot be read, or holds no frames."""


class NoFaceError(InputError):
    """No face was found where one is needed."""


class DataError(InputError):
    """A prepared data folder that is missing, incomplete or of another format."""


class CheckpointError(InputError):
    """A checkpoint that is missing, corrupt, or of another config or format version."""


class ConfigError(InputError):
    """A configuration value or name that monalisa does not know."""


class IdentityPackError(InputError):
    """An identity pack that is missing, corrupt, or made from another base checkpoint."""


class TrackFileError(InputError):
    """A landmark track file that is malformed."""


class FrameError(InputError):
    """A frame range or frame-number pattern that cannot be read (monalisa.nodes.frames)."""


class ModelFormatError(InputError):
    """An ONNX model file whose metadata the runtime does not understand."""


class BackendUnavailableError(InputError):
    """A chosen backend (a landmark detector, an execution provider) cannot run here."""


class ExportError(MonalisaError):
    """An export that could not be written or verified."""


class ExportMismatchError(ExportError):
    """onnxruntime's output differs from torch's beyond the stated bound."""


class DivergedError(MonalisaError):
    """Training or fine-tuning produced weights that are not finite (NaN, inf); nothing is written."""

"""Every exception amd-bridge raises on purpose.

::

    AmdError
    ├── ConfigError          a setting is invalid; raised at start-up
    ├── ModelError           a model is missing, corrupt or of an unknown format
    ├── AudioError           audio that cannot be used
    │   ├── UnsupportedAudioFormat   an encoding/rate pair we do not accept
    │   └── AudioFileError           a file that cannot be read or decoded
    ├── EngineError          inference failed or was refused for one request
    └── ProtocolError        a peer sent something the wire protocol does not allow

Callers catch the narrowest class they can act on; a handler for ``AmdError``
sees everything the project raises deliberately, and anything else is a bug.
"""


class AmdError(Exception):
    """Base of all deliberate amd-bridge errors."""


class ConfigError(AmdError):
    """A setting is missing or out of range."""


class ModelError(AmdError):
    """A model file or directory is missing, corrupt or unsupported."""


class AudioError(AmdError):
    """Audio that cannot be used."""


class UnsupportedAudioFormat(AudioError):
    """The encoding or sample rate is not one amd-bridge accepts."""


class AudioFileError(AudioError):
    """A file could not be opened or decoded as audio."""


class EngineError(AmdError):
    """Inference failed for a request (the service keeps running)."""


class ProtocolError(AmdError):
    """A peer broke the wire protocol; the connection gets an error, the service goes on."""

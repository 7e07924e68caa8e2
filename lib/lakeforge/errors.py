"""Errors lakeforge raises on bad input; the CLI prints them without a traceback."""


class LakeforgeError(Exception):
    """Base class: a problem the user can fix, described in the message."""


class ConfigError(LakeforgeError):
    """The configuration is invalid; the message names the key."""


class SparkSetupError(LakeforgeError):
    """Spark or its Delta jars could not be started or found."""


class IngestError(LakeforgeError):
    """A landing file cannot be ingested; the message names the file and column."""


class StepError(LakeforgeError):
    """A pipeline step cannot run with the data it found."""

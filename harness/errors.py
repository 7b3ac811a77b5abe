"""Errors the harness reports to a user as one clear line (exit status 2), never a traceback."""


class HarnessError(Exception):
    """A problem with the user's input or environment, worded for the user."""


class RecordError(HarnessError):
    """A file given as a run record is missing, unreadable, foreign or of another schema version."""


class DeviceError(HarnessError):
    """An unknown or unavailable device was asked for."""

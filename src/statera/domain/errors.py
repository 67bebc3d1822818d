"""The error tree. Each error says what a client did wrong (or what went wrong inside)
and whether retrying can help. Turning errors into HTTP happens in one place (api/errors.py)."""

from __future__ import annotations


class StateraError(Exception):
    """Base of every error Statera raises on purpose."""

    status = 500
    message = "An unknown error occurred."

    def __init__(self, message: str | None = None, **kwargs: object) -> None:
        text = message if message is not None else self.message
        if kwargs:
            text = text.format(**kwargs)
        super().__init__(text)
        self.text = text


class InvalidInput(StateraError):
    status = 400
    message = "Invalid input."


class NotAuthenticated(StateraError):
    status = 401
    message = "Authentication required."


class PolicyForbidden(StateraError):
    status = 403
    message = "Policy does not allow this request to be performed."


class QuotaExceeded(StateraError):
    status = 403
    message = "Quota has been met for resources: {resources}"


class NotFound(StateraError):
    status = 404
    message = "{resource} {id} not found."


class NotAcceptable(StateraError):
    status = 406
    message = "Only application/json responses are available."


class Conflict(StateraError):
    status = 409
    message = "Conflict."


class ImmutableObject(Conflict):
    message = "{resource} {id} is immutable and cannot be updated."


class DuplicateEntry(Conflict):
    message = "Another {resource} on this {parent} already uses {what}."


class ProjectBusy(StateraError):
    status = 503
    message = "Project busy. Unable to lock the project. Please try again."


class ServiceUnavailable(StateraError):
    status = 503
    message = "The service is unavailable right now; try again shortly."


class ConfigError(StateraError):
    """A bad configuration value. Raised at start, never at request time."""

    message = "Invalid configuration."


# Failures inside a flow: whether a retry can help.


class StepFailed(StateraError):
    """A flow step failed and no retry will help: revert now."""

    retryable = False


class TemporaryFailure(StepFailed):
    """A flow step failed in a way that a retry after `delay` seconds may mend."""

    retryable = True

    def __init__(self, message: str | None = None, delay: float = 1.0, **kwargs: object):
        super().__init__(message, **kwargs)
        self.delay = delay


class LeaseLost(StateraError):
    """This worker no longer owns the operation: stop at once and touch nothing more."""

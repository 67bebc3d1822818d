"""The agent's errors; app.py turns them into ``{"message", "details"}`` answers."""

from __future__ import annotations


class AgentError(Exception):
    status = 500

    def __init__(self, message: str, details: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return f"{self.message}: {self.details}" if self.details else self.message


class BadRequest(AgentError):
    status = 400


class Forbidden(AgentError):
    status = 403


class NotFound(AgentError):
    status = 404


class Conflict(AgentError):
    status = 409

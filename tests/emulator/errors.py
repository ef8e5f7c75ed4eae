"""The one error the emulated API answers with: OpenAI's ``{"error": {...}}`` body."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An HTTP error response in OpenAI's shape: status plus message, type, param and code."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI sends with this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def not_found(kind: str, object_id: str, param: str | None = None) -> ApiError:
    """The 404 OpenAI answers for an unknown object id."""
    return ApiError(404, f"No such {kind}: '{object_id}'", param=param)


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 ``invalid_request_error``."""
    return ApiError(400, message, param=param, code=code)

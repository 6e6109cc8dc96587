"""``Status`` bodies: how the API server reports errors (and some successes)."""

from __future__ import annotations

from typing import Any

GROUPS = {"jobs": "batch", "pods": ""}


def status_body(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if code < 400:
        body.pop("message")
        body.pop("reason")
    if details is not None:
        body["details"] = details
    return body


class ApiError(Exception):
    """An error the API answers with: HTTP code plus a Status body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.body = status_body(code, reason, message, details)
        self.headers = headers or {}

    @classmethod
    def not_found(cls, resource: str, name: str) -> ApiError:
        group = GROUPS.get(resource, "")
        qualified = f"{resource}.{group}" if group else resource
        return cls(
            404,
            "NotFound",
            f'{qualified} "{name}" not found',
            {"name": name, "group": group, "kind": resource}
            if group
            else {"name": name, "kind": resource},
        )

    @classmethod
    def already_exists(cls, resource: str, name: str) -> ApiError:
        group = GROUPS.get(resource, "")
        qualified = f"{resource}.{group}" if group else resource
        details = {"name": name, "kind": resource}
        if group:
            details["group"] = group
        return cls(409, "AlreadyExists", f'{qualified} "{name}" already exists', details)

    @classmethod
    def conflict(cls, resource: str, name: str, message: str) -> ApiError:
        group = GROUPS.get(resource, "")
        qualified = f"{resource}.{group}" if group else resource
        details = {"name": name, "kind": resource}
        if group:
            details["group"] = group
        return cls(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {qualified} "{name}": {message}',
            details,
        )

    @classmethod
    def invalid(cls, kind: str, group: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
        """422: ``causes`` are (field, message) pairs like the API's field errors."""
        shown = ", ".join(f"{field}: {message}" for field, message in causes)
        qualified = f"{kind}.{group}" if group else kind
        details = {
            "name": name,
            "kind": kind,
            "causes": [
                {"reason": _cause_reason(message), "message": message, "field": field}
                for field, message in causes
            ],
        }
        if group:
            details["group"] = group
        return cls(422, "Invalid", f'{qualified} "{name}" is invalid: {shown}', details)

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, "BadRequest", message)

    @classmethod
    def gone(cls, message: str) -> ApiError:
        return cls(410, "Expired", message)

    @classmethod
    def not_allowed(cls, message: str) -> ApiError:
        return cls(405, "MethodNotAllowed", message)


def _cause_reason(message: str) -> str:
    if message.startswith("Required value"):
        return "FieldValueRequired"
    if message.startswith("Unsupported value"):
        return "FieldValueNotSupported"
    if message.startswith("Forbidden"):
        return "FieldValueForbidden"
    return "FieldValueInvalid"

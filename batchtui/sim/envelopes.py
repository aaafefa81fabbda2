"""Each provider's error envelope and auth rules, as the real APIs send them (PROVIDERS.md
A.10, B.7, C.7). Shared by the provider routes and the fault injector."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import JSONResponse

GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

ANTHROPIC_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

OPENAI_TYPE = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    429: "rate_limit_error",  # (insufficient_quota shares the status)
    500: "server_error",
    503: "server_error",
    529: "server_error",
}


def request_id(prefix: str = "req_") -> str:
    return prefix + secrets.token_hex(12)


def openai_error(status: int, message: str, *, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": OPENAI_TYPE.get(status, "invalid_request_error"),
                      "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers={"x-request-id": request_id(), **(headers or {})})


def anthropic_error(status: int, message: str, *, error_type: str | None = None,
                    headers: dict[str, str] | None = None) -> JSONResponse:
    rid = request_id("req_011")
    body = {"type": "error", "error": {"type": error_type or ANTHROPIC_TYPE.get(status, "api_error"),
                                       "message": message}, "request_id": rid}
    return JSONResponse(body, status_code=status, headers={"request-id": rid, **(headers or {})})


def google_error(status: int, message: str, *, details: list[dict] | None = None,
                 headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": status, "message": message, "status": GOOGLE_STATUS.get(status, "UNKNOWN")}}
    if details:
        body["error"]["details"] = details
    return JSONResponse(body, status_code=status, headers=headers or {})


def error_for(provider: str, status: int, message: str, *, retry_after: float | None = None) -> JSONResponse:
    """A provider-shaped error (the fault injector's answer)."""
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
    if provider == "anthropic":
        return anthropic_error(status, message, headers=headers)
    if provider == "gemini":
        details = None
        if retry_after is not None:
            # Google puts its hint in the body, not a header.
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after:g}s"}]
        return google_error(status if status != 529 else 503, message, details=details)
    return openai_error(status, message, headers=headers)


def bad_key(provider: str) -> JSONResponse:
    if provider == "anthropic":
        return anthropic_error(401, "invalid x-api-key")
    if provider == "gemini":
        # Gemini answers a wrong key with 400, not 401 (PROVIDERS.md 0.2).
        return google_error(400, "API key not valid. Please pass a valid API key.", details=[
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
             "domain": "googleapis.com"}])
    return openai_error(401, "Incorrect API key provided. You can find your API key in your dashboard.",
                        code="invalid_api_key")


def missing_key(provider: str) -> JSONResponse:
    if provider == "anthropic":
        return anthropic_error(401, "x-api-key header is required")
    if provider == "gemini":
        return google_error(403, "Method doesn't allow unregistered callers (callers without established "
                                 "identity). Please use API Key or other form of API consumer identity to call "
                                 "this API.")
    return openai_error(401, "You didn't provide an API key. You need to provide your API key in an "
                             "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")


def key_of(provider: str, request: Request) -> str | None:
    """The API key as each provider's servers read it."""
    auth = request.headers.get("authorization", "")
    bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
    if provider == "anthropic":
        # The 2.x SDK may send Bearer instead of x-api-key (PROVIDERS.md 0.2): accept both.
        return request.headers.get("x-api-key") or bearer
    if provider == "gemini":
        return request.headers.get("x-goog-api-key") or request.query_params.get("key") or bearer
    return bearer

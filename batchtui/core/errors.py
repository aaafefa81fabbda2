"""Errors the engine raises. Their text never holds an API key: provider text in them is
passed through `redact` by the transport, and no request headers are ever included."""

from __future__ import annotations


class BatchtuiError(Exception):
    """Base of every error batchtui reports to a user."""


class ConfigError(BatchtuiError):
    """A malformed config file, unknown provider, bad theme... named with file and line."""


class InputError(BatchtuiError):
    """A batch input file that fails validation: nothing was sent."""

    def __init__(self, message: str, problems: list[tuple[int, str]] | None = None):
        super().__init__(message)
        self.problems = problems or []  # (line number, what is wrong)


class ProviderError(BatchtuiError):
    """A provider answered with an error, or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        account: str | None = None,
        status_code: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
    ):
        self.account = account
        self.status_code = status_code
        self.error_type = error_type
        self.request_id = request_id
        self.message = message
        prefix = f"{account}: " if account else ""
        code = f" (HTTP {status_code}{', ' + error_type if error_type else ''})" if status_code else ""
        super().__init__(f"{prefix}{message}{code}")


class AuthError(ProviderError):
    """The key was refused (401/403, or Gemini's 400 API_KEY_INVALID)."""


class NotFoundError(ProviderError):
    """The batch, file or results do not exist (or no longer do)."""


class RateLimitedError(ProviderError):
    """429 (or 529 overloaded) that outlasted our retries; `retry_after` in seconds if known."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class UnreachableError(ProviderError):
    """Connection refused, reset, dropped mid-response, or timed out, after our retries."""


class ProtocolError(ProviderError):
    """The provider answered, but not in a shape we understand (HTML 502 page, bad JSON)."""


class CreateOutcomeUnknown(ProviderError):
    """A create was sent but its answer was lost. The batch may exist: look for it by listing
    (never re-send blindly, that makes a duplicate batch)."""


class AmbiguousCreate(CreateOutcomeUnknown):
    """Looking for the batch a lost create made found several that could be it (Anthropic keeps
    no metadata to tell them apart): taking one would be a guess, so none is taken."""

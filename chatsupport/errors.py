"""Every error code the product returns, in one table: code → (HTTP status, default message).

Domain code raises ``AppError("code")``; the web layer turns it into ``{"error": {"code", "message",
"details"}}`` with the status from this table, and the CLI prints the same code. Codes are stable: clients and
tests match on them, so rename none.
"""

from __future__ import annotations

from typing import Any

ERRORS: dict[str, tuple[int, str]] = {
    "bad_request": (400, "The request could not be understood."),
    "malformed_json": (400, "The request body is not valid JSON."),
    "unauthorized": (401, "Authentication is required."),
    "invalid_credentials": (401, "Email or password is incorrect."),
    "invalid_token": (401, "The token is invalid or has expired."),
    "wrong_password": (403, "The current password is incorrect."),
    "mfa_required": (401, "A one-time code is required."),
    "mfa_invalid": (401, "The code is incorrect or was already used. Use the current code from your app, or a "
                         "recovery code."),
    "mfa_enrollment_required": (403, "Your workspace requires two-factor authentication. Sign in to the console "
                                     "once to set it up, then sign in here with a code."),
    "forbidden": (403, "You do not have permission to do this."),
    "csrf_failed": (403, "The form expired or was not sent from this site. Reload the page and try again."),
    "signup_closed": (403, "Sign-up is closed on this instance."),
    "not_found": (404, "Not found."),
    "method_not_allowed": (405, "This method is not allowed here."),
    "conflict": (409, "The resource conflicts with the current state."),
    "already_exists": (409, "A resource with this name already exists."),
    "setup_done": (409, "This instance is already set up."),
    "too_large": (413, "The request body is too large."),
    "unsupported_type": (415, "This content type is not supported."),
    "url_not_allowed": (422, "This address cannot be reached from ChatSupport: private, loopback, link-local and "
                             "cloud-metadata addresses are refused unless listed in CHATSUPPORT_OUTBOUND_ALLOWLIST."),
    "validation_error": (422, "Some fields are invalid."),
    "too_many_attempts": (429, "Too many attempts. Try again later."),
    "rate_limited": (429, "Too many requests. Try again later."),
    "internal_error": (500, "Something went wrong on our side."),
    "not_ready": (503, "The service is starting up."),
    # knowledge base: why a document that was accepted could not be indexed (stored as its error_code)
    "extraction_failed": (422, "The text could not be extracted. The file may be damaged."),
    "encrypted": (422, "The file is password-protected. Remove the password and upload it again."),
    "no_text": (422, "No text was found in the file. Scanned pages need OCR before they can be used."),
    "embedding_failed": (500, "The text could not be indexed. Retry the document."),
    "interrupted": (500, "Processing was interrupted (the server stopped). Retry the document."),
    # CLI and operations
    "server_running": (409, "A ChatSupport server is using this data dir; stop it first."),
    "data_dir_not_empty": (409, "The data dir already holds data; pass --force to replace it (it is kept aside)."),
    "backup_invalid": (400, "The file is not a ChatSupport backup archive."),
    "backup_corrupt": (400, "The backup archive is damaged: a checksum or the database integrity check failed."),
    "backup_too_new": (400, "The backup comes from a newer ChatSupport; upgrade before restoring it."),
    "backup_passphrase": (400, "The backup is encrypted and the passphrase is missing or wrong."),
    "backup_running": (409, "A backup is already running; wait for it to finish."),
    # conversations and answers
    "illegal_transition": (409, "The conversation cannot change to that state from its current one."),
    "conversation_closed": (409, "The conversation is archived; start a new one."),
    "already_taken": (409, "Another agent is handling this conversation."),
    "agent_at_capacity": (409, "This agent already handles as many conversations as their limit allows. Resolve or "
                               "hand one back first, or raise their limit under Settings → Team."),
    # the chat widget (docs/widget-protocol.md)
    "message_too_long": (413, "The message is too long (4,000 characters at most)."),
    "invalid_signature": (403, "The identity signature does not match this user id."),
    "widget_token_invalid": (401, "The chat session has expired. Reload the page to continue."),
    "origin_not_allowed": (403, "This chat is not available on this website."),
    "chatbot_unavailable": (403, "This chat is not available right now."),
    "not_resolved": (409, "The conversation can be rated once it is resolved."),
    "too_many_connections": (429, "Too many people are chatting right now. Try again in a moment."),
    # bulk exports
    "export_not_ready": (409, "The export is still being written; try again when its status is completed."),
    "export_failed": (409, "The export failed; request it again."),
    "integration_failed": (502, "The other server could not be reached or refused the request."),
    "mail_not_configured": (409, "No mail server is configured (Settings → Integrations, or "
                            "CHATSUPPORT_SMTP_HOST), so nothing can be emailed."),
    # team invitations
    "invitation_invalid": (404, "This invitation link is not valid, or it was withdrawn. Ask for a new one."),
    "invitation_expired": (410, "This invitation has expired. Ask the person who invited you for a new link."),
    "invitation_used": (410, "This invitation was already used. Sign in with the account it created."),
}


class AppError(Exception):
    """A failure the caller should see, named by a code from ``ERRORS``."""

    def __init__(self, code: str, message: str | None = None, details: Any = None):
        if code not in ERRORS:
            raise ValueError(f"unknown error code {code!r}: add it to chatsupport.errors.ERRORS")
        self.code = code
        self.status = ERRORS[code][0]
        self.message = message or ERRORS[code][1]
        self.details = details
        super().__init__(f"{code}: {self.message}")

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

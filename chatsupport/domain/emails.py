"""The texts of the emails ChatSupport sends, in one place."""

from __future__ import annotations


def reset_email_body(url: str) -> str:
    return (
        "Someone asked to reset the password of your ChatSupport account.\n\n"
        f"Choose a new password here (the link works once, for one hour):\n{url}\n\n"
        "If this wasn't you, ignore this email: your password stays as it is.\n"
    )

"""The texts of the emails ChatSupport sends, in one place."""

from __future__ import annotations


def reset_email_body(url: str) -> str:
    return (
        "Someone asked to reset the password of your ChatSupport account.\n\n"
        f"Choose a new password here (the link works once, for one hour):\n{url}\n\n"
        "If this wasn't you, ignore this email: your password stays as it is.\n"
    )


def invitation_email(workspace: str, inviter: str, role: str, url: str, expires: str) -> tuple[str, str]:
    """(subject, body) of a team invitation."""
    return (f"{inviter} invited you to {workspace} on ChatSupport", (
        f"{inviter} invited you to join {workspace} on ChatSupport as {'an' if role[0] in 'aeiou' else 'a'} {role}.\n\n"
        f"Choose your password and sign in here (the link works once, until {expires} UTC):\n{url}\n\n"
        "If you were not expecting this, ignore this email: no account is created without the link.\n"
    ))

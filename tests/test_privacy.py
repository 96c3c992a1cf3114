"""PII masking before cloud calls, and API keys encrypted at rest."""

from __future__ import annotations

import pytest

from chatsupport.llm.base import ChatMessage, ChatRequest
from chatsupport.llm.privacy import iban_ok, luhn_ok, mask, mask_request
from chatsupport.llm.secrets import KeyUnreadable, decrypt_key, encrypt_key, key_hint


@pytest.mark.parametrize("text, expected", [
    ("write to jane.doe+orders@example.co.uk please", "write to [email] please"),
    ("call me on +44 20 7946 0958 or 0612345678", "call me on [phone] or [phone]"),
    ("(555) 123-4567 after 5", "[phone] after 5"),
    ("my card is 4111 1111 1111 1111, exp 12/27", "my card is [card], exp 12/27"),
    ("card 5500-0000-0000-0004", "card [card]"),
    ("IBAN DE89 3704 0044 0532 0130 00 thanks", "IBAN [iban] thanks"),
    ("iban GB82WEST12345698765432", "iban [iban]"),
    ("GB82 WEST 1234 5698 7654 32 OK", "[iban] OK"),
])
def test_pii_is_masked(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize("text", [
    "order 1234567 was late",                    # bare order number
    "tracking 4111111111111112",                 # 16 digits failing Luhn: not a card
    "DE89 3704 0044 0532 0130 01",               # IBAN with a wrong checksum
    "on 2024-01-15 we paid 1500 euros",          # dates and amounts
    "version 3.11.7 on port 8000",
    "how do refunds work?",
])
def test_lookalikes_are_left_alone(text: str) -> None:
    assert mask(text) == text


def test_checksums() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("DE89 3704 0044 0532 0130 00") and not iban_ok("DE89 3704 0044 0532 0130 01")


def test_request_masks_customer_turns_and_their_values_in_the_system_prompt() -> None:
    system = ("Company passages: contact support@acme.example.\nCustomer: Jane Roe <jane@roe.example>, "
              "phone +1 415 555 0100")
    request = ChatRequest(messages=[ChatMessage("system", system),
                                    ChatMessage("user", "I'm jane@roe.example, card 4111 1111 1111 1111"),
                                    ChatMessage("assistant", "Thanks!"),
                                    ChatMessage("user", "refund please")],
                          passages=[], question="refund please", sensitive=["Jane Roe", "+1 415 555 0100"])
    masked = mask_request(request)
    system_out = masked.messages[0].content
    assert "support@acme.example" in system_out  # the company's published address survives
    assert "jane@roe.example" not in system_out and "Jane Roe" not in system_out and "555 0100" not in system_out
    assert masked.messages[1].content == "I'm [email], card [card]"
    assert masked.sensitive == ()
    assert request.messages[1].content.startswith("I'm jane@")  # the original is untouched


def test_keys_are_sealed_to_instance_workspace_and_kind() -> None:
    blob = encrypt_key("instance-secret", "ws-1", "openai", "sk-live-abcdef123456")
    assert b"sk-live" not in blob and b"123456" not in blob
    assert decrypt_key("instance-secret", "ws-1", "openai", blob) == "sk-live-abcdef123456"
    for secret, workspace, kind in (("other-secret", "ws-1", "openai"), ("instance-secret", "ws-2", "openai"),
                                    ("instance-secret", "ws-1", "anthropic")):
        with pytest.raises(KeyUnreadable):
            decrypt_key(secret, workspace, kind, blob)
    assert encrypt_key("instance-secret", "ws-1", "openai", "k") != encrypt_key("instance-secret", "ws-1", "openai", "k")
    assert key_hint("sk-live-abcdef123456") == "3456" and key_hint("short") == ""

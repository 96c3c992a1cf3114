"""Mask customer PII before anything leaves the machine for a cloud model (setting ``LLM_MASK_PII``, on by default).

What is masked: e-mail addresses, phone numbers, payment-card numbers (13-19 digits that pass the Luhn check, so
an order number is left alone) and IBANs (ISO 13616 mod-97 checksum). Each becomes a placeholder such as
``[email]`` — the model still knows *that* the customer gave an address, and can answer "we'll write to you".

Which text: the customer's own turns (user and assistant history) and the question. Knowledge-base passages in
the system prompt are the company's published text (its support address must survive), so the system prompt is
left alone — except that every value found in the customer's turns, and every value the caller lists in
``ChatRequest.sensitive`` (the pre-chat form's e-mail, name, phone), is masked wherever it appears.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Callable, Iterable

from chatsupport.llm.base import ChatMessage, ChatRequest

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
PHONE = re.compile(r"(?<![\w+(])(?:\+|00|\()?\d[\d ().-]{6,18}\d(?!\w)")

Found = tuple[str, str]  # (the value as written, its placeholder)
Judge = Callable[[str], "Found | None"]


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    iban = candidate.replace(" ", "").upper()
    if not 15 <= len(iban) <= 34 or not iban.isalnum():
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _email(text: str) -> Found | None:
    return text, "[email]"


def _iban(text: str) -> Found | None:
    """The longest leading run of groups that passes mod-97: "GB82 WEST … 32 OK" must not swallow "OK"."""
    groups = text.split(" ")
    for end in range(len(groups), 0, -1):
        candidate = " ".join(groups[:end])
        if iban_ok(candidate):
            return candidate, "[iban]"
    return None


def _card(text: str) -> Found | None:
    digits = re.sub(r"\D", "", text)
    return (text, "[card]") if 13 <= len(digits) <= 19 and luhn_ok(digits) else None


def _phone(text: str) -> Found | None:
    """7-15 digits (E.164 allows 15) written the way people write phones: not a date, not a bare order number."""
    digits = re.sub(r"\D", "", text)
    if not 7 <= len(digits) <= 15 or re.fullmatch(r"\d{1,4}[-./]\d{1,2}[-./]\d{1,4}", text):
        return None
    if text.isdigit() and not text.startswith("0"):
        return None  # 1234567 is an order number; 0612345678 is a national phone number
    return text, "[phone]"


RULES: tuple[tuple[re.Pattern[str], Judge], ...] = ((EMAIL, _email), (IBAN, _iban), (CARD, _card), (PHONE, _phone))


def _apply(text: str, pattern: re.Pattern[str], judge: Judge, found: list[Found]) -> str:
    def swap(match: re.Match[str]) -> str:
        hit = judge(match.group())
        if hit is None:
            return match.group()
        found.append(hit)
        return hit[1] + match.group()[len(hit[0]):]

    return pattern.sub(swap, text)


def find_pii(text: str) -> list[Found]:
    """Every (value, placeholder) in ``text``; rules run in order (e-mail first) on the text masked so far."""
    found: list[Found] = []
    for pattern, judge in RULES:
        text = _apply(text, pattern, judge, found)
    return found


def mask(text: str) -> str:
    """Every e-mail, phone, valid card number and valid IBAN in ``text`` replaced by its placeholder."""
    for pattern, judge in RULES:
        text = _apply(text, pattern, judge, [])
    return text


def _replace_known(text: str, known: Iterable[tuple[str, str]]) -> str:
    for value, label in sorted(known, key=lambda pair: -len(pair[0])):
        if len(value.strip()) >= 3:
            text = text.replace(value, label)
    return text


def mask_request(request: ChatRequest) -> ChatRequest:
    """A copy of ``request`` safe to send to a cloud provider (see the module docstring for what is masked)."""
    known: list[tuple[str, str]] = [(value, "[customer data]") for value in request.sensitive if value]
    for message in request.messages:
        if message.role != "system":
            known += find_pii(message.content)
    known += find_pii(request.question)
    messages = []
    for message in request.messages:
        content = _replace_known(message.content, known)
        messages.append(ChatMessage(message.role, content if message.role == "system" else mask(content)))
    return replace(request, messages=messages, question=mask(_replace_known(request.question, known)),
                   sensitive=())

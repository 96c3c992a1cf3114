"""When a conversation goes to a human (PRD Story 4.2), as structured data from our rules — never parsed from model
text.

Escalation follows what the customer *demands* or what *happened to them*, never the topic: "how do refunds work"
is answered, "refund it now" is escalated. Each message rule is a pattern over the demand's form (imperative,
"I want you to…", a threat, a report of something done to them), with a how-to guard for the topics that are
ordinary questions too. Conversation rules (low confidence, N failed answers, max length) are decided by the
pipeline with the numbers it has. Reasons come from ``REASONS`` only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

REASONS = ("user_request", "frustration_detected", "billing_dispute", "account_deletion", "legal",
           "security_incident", "low_confidence", "max_failed_responses", "max_conversation_length")


@dataclass(frozen=True)
class Decision:
    reason: str
    rule: str           # which rule fired, for the inbox and for debugging a wrong hand-over
    detail: str = ""    # the words that fired it


def _rx(*parts: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in parts), re.I)


# A question about how something works ("how do I…", "what is your policy…", "can I…"): topical words inside it
# are not demands unless a demand marker is present too.
HOWTO = _rx(r"^\s*(how|what|what's|whats|where|when|why|which|who|is|are|does|do you|do i|do we|can i|can we|"
            r"could i|could we|should i|would i|will i|is there|are there|any way)\b",
            r"\b(how (do|can|does|would|to)|is it possible|policy|process|procedure)\b")
URGENT = _rx(r"\b(now|right now|immediately|asap|at once|today|this instant|within \d+ (hours|days))\b",
             r"\bi (demand|insist|expect|require)\b", r"!{2,}")

USER_REQUEST = _rx(
    r"\b(talk|speak|chat)\s+(to|with)\s+(a |an |some |your |the |one of your )?(human|person|people|someone|"
    r"somebody|agent|representative|rep|manager|supervisor|staff|team member|real|actual|live)",
    r"\b(real|live|actual)\s+(person|human|agent|people|support)\b", r"\bhuman (agent|being|support|please)\b",
    r"\bnot (a|the|some|your) (chat)?bot\b", r"\b(call|phone|ring)\s+me\b", r"\bgive me a (call|ring)\b",
    r"\b(connect|transfer|put)\s+me\s+(to|with|through)\b", r"\bescalate (this|it|my|me|the)\b",
    r"\b(your|a) (manager|supervisor)\b",
    r"\b(someone|somebody|anyone)\s+(from|at|on)\s+(your|the)\s+\w+(\s+\w+)?\s+(team|department|staff|support)",
    r"\b(someone|somebody)\s+(please\s+)?(call|contact|email|reach|get back to)\s+me\b",
    r"^\s*(agent|human|operator|representative)\s*[.!?]*\s*$")
LEGAL = _rx(r"\b(lawyers?|attorneys?|solicitors?)\b", r"\blegal (team|department|counsel) will\b",
            r"\b(legal action|lawsuit|law suit|class action|cease and desist|small claims)\b",
            r"\b(sue|suing) (you|your|the company|them)\b", r"\bsee you in court\b|\btake (you|this) to court\b",
            r"\breport (you|this) to (the )?(ftc|authorities|regulator|police|ico|cnil|data protection)")
DELETION_OBJECT = r"(my|our|all|every|the)\b[\w\s']{0,40}\b(account|accounts|data|information|profile|models?|repos?)"
ACCOUNT_DELETION = _rx(
    r"^\s*(please\s+)?(delete|erase|remove|wipe|purge|close)\s+" + DELETION_OBJECT,
    r"\b(i|we) (demand|insist|require|want you to|need you to|expect you to)\b.{0,30}\b(delete|erase|remove|wipe|"
    r"purge|close)\b",
    r"\bright to (be forgotten|erasure)\b", r"\b(gdpr|ccpa)\b.{0,60}\b(delete|erase|erasure|remove|deletion)\b",
    r"\b(delete|erase|erasure|remove|deletion)\b.{0,60}\b(gdpr|ccpa)\b")
BILLING_DISPUTE = _rx(
    r"\brefund (it|me|my|this|that|the|them|everything)\b", r"\bmoney back\b", r"\bchargeback\b",
    r"\b(i|we) (want|need|demand|expect|deserve|require)\b.{0,20}\brefund",
    r"\bdisput(e|ing)\b.{0,30}\b(charge|payment|invoice|bill|transaction)",
    r"\b(charged|billed|invoiced)\b.{0,60}\b(never|didn't|did not|not|without)\b.{0,30}\b(use|used|order|ordered|"
    r"sign|signed|authori[sz]e|authori[sz]ed|ask|asked|agree|agreed|subscribe|subscribed|consent)",
    r"\b(double|twice|overcharged|over-charged)\b.{0,20}\b(charg|bill)|\b(charged|billed) (me )?(twice|double)",
    r"\bunauthori[sz]ed (charge|payment|transaction|debit)",
    r"\b(invoice|bill|charge)\b.{0,25}\b(is|was|looks) (wrong|incorrect)\b.{0,40}\b(fix|correct|refund|want)")
SECURITY_INCIDENT = _rx(
    r"\b(my|our)\b[\w\s']{0,40}\b(was|got|has been|have been|been|is|are)\s+(hacked|compromised|breached|"
    r"hijacked|taken over)",
    # a leaked token or key is self-service (revoke it, the docs say how); leaked data is an incident
    r"\b(my|our)\s+([\w']+\s+){0,3}(data|datasets?|information|files|repos?|repositor(y|ies)|accounts?|models?|"
    r"emails?|personal details)\s+(was|were|got|has been|have been)\s+(leaked|exposed|stolen|published)",
    r"\b(someone|somebody|a stranger|an attacker)\b.{0,30}\b(logged|signed|got|broke) (in|into)\b",
    r"\b(someone|somebody)\b.{0,20}\b(accessed|is using|used|has access to|took over) (my|our)\b",
    r"\b(i|we) (did not|didn't|never)\b.{0,20}\b(make|made|authori[sz]e|authori[sz]ed|create|created|push|pushed|"
    r"log|logged|sign|signed|delete|deleted|change|changed|request|requested)\b",
    r"\b(suspicious|unrecogni[sz]ed|unknown|strange)\s+(activity|login|log-in|sign-in|device|session)s?\b",
    r"\b(data|security) (breach|leak)\b", r"\bi('ve| have)? been hacked\b")
FRUSTRATION = _rx(
    r"\b(worst|horrible|terrible|awful|pathetic|useless|ridiculous|unacceptable|disgraceful|incompetent)\b",
    r"\b(fed up|sick of|sick and tired|had enough|waste of (my )?time|scam|rip-?off|wtf|furious|outraged)\b",
    r"\b(nobody|no one|no-one)\b.{0,20}\b(respond|responding|responded|answer|answers|answering|helps|help|"
    r"replies|replied|cares)\b",
    r"\b(ignor(e|es|ed|ing) me|keep(s)? ignoring)\b",
    r"\b(asked|told you|tried|written|emailed|contacted)\b.{0,25}\b(three|four|five|several|multiple|many|\d+) "
    r"times\b", r"\b(this|you) (is|are)n'?t (helping|working)\b|\bnot helping\b|\bstill (not|no)\b.{0,15}"
    r"\b(fixed|working|answer|response|reply)\b", r"!{3,}")

# Most specific first: a message that is both a legal threat and a person request is filed as legal.
RULES: tuple[tuple[str, re.Pattern[str], bool], ...] = (
    # (reason, pattern, needs a demand when phrased as a how-to question)
    ("security_incident", SECURITY_INCIDENT, False),
    ("legal", LEGAL, False),
    ("account_deletion", ACCOUNT_DELETION, True),
    ("billing_dispute", BILLING_DISPUTE, True),
    ("user_request", USER_REQUEST, False),
    ("frustration_detected", FRUSTRATION, False),
)


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u2019", "'").replace("\u2018", "'")).strip()


def message_rules(message: str, triggers: dict[str, Any], sentiment_label: str = "neutral",
                  repeated: bool = False) -> Decision | None:
    """The pre-answer check on one customer message. ``triggers`` is the chatbot's ``escalation_triggers``."""
    text = normalise(message)
    howto = bool(HOWTO.search(text)) and not URGENT.search(text)
    for reason, pattern, guarded in RULES:
        if reason == "user_request" and not triggers.get("explicit_request", True):
            continue
        if reason == "frustration_detected" and not triggers.get("frustration_detection", True):
            continue
        match = pattern.search(text)
        if match and not (guarded and howto):
            return Decision(reason, f"pattern:{reason}", match.group(0))
    if triggers.get("frustration_detection", True):
        if sentiment_label == "very_negative":
            return Decision("frustration_detected", "sentiment:very_negative")
        if repeated and sentiment_label == "negative":
            return Decision("frustration_detected", "repeated_question")
    return None


def conversation_rules(*, customer_messages: int, max_length: int) -> Decision | None:
    if customer_messages > max_length:
        return Decision("max_conversation_length", "behavior_settings.max_conversation_length", str(max_length))
    return None


def answer_rules(*, outcome: str, confidence: float, threshold: float, failed_in_a_row: int,
                 max_failed: int) -> Decision | None:
    """The post-answer check. ``failed_in_a_row`` counts this reply too when it failed (declined or low)."""
    failed = outcome == "declined" or confidence < threshold
    if failed and failed_in_a_row >= max_failed:
        return Decision("max_failed_responses", "escalation_triggers.max_failed_responses", str(max_failed))
    if outcome == "answered" and confidence < threshold:
        return Decision("low_confidence", "escalation_triggers.low_confidence_threshold", f"{confidence:.2f}")
    return None


# --- telling the customer ---------------------------------------------------------------------------------
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def is_open(business_hours: dict[str, Any], now: datetime) -> bool:
    """Whether humans are at work. Hours govern humans only: the AI answers around the clock."""
    if not business_hours.get("enabled"):
        return True
    try:
        local = now.astimezone(ZoneInfo(business_hours.get("timezone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        local = now
    day = (business_hours.get("schedule") or {}).get(DAYS[local.weekday()])
    if not day:
        return False
    return day["start"] <= local.strftime("%H:%M") < day["end"]


# How long one conversation takes an agent, for the wait estimate.
MINUTES_PER_CONVERSATION = 3


def estimated_wait_minutes(agents_online: int, queue_ahead: int) -> int | None:
    if agents_online <= 0:
        return None
    return max(1, round((queue_ahead + 1) * MINUTES_PER_CONVERSATION / agents_online))


def escalation_message(reason: str, *, open_now: bool, wait_minutes: int | None, offline_message: str) -> str:
    """What the customer reads: that a person takes over, why in plain words, and when to expect them."""
    opening = OPENINGS.get(reason, "I'm handing this conversation to a member of our team.")
    if not open_now:
        return f"{opening} {offline_message} We'll reply here (and by email if you left one) as soon as we're back."
    if wait_minutes is not None:
        return (f"{opening} A team member will join shortly — estimated wait about {wait_minutes} "
                f"minute{'s' * (wait_minutes != 1)}.")
    return f"{opening} No one is online right this minute; a team member will reply here as soon as possible."


OPENINGS = {
    "user_request": "Of course — I'm connecting you with a member of our team.",
    "frustration_detected": "I'm sorry this has been frustrating. I'm bringing in a member of our team.",
    "billing_dispute": "Billing questions like this one need a person: I'm passing it to our team.",
    "account_deletion": "Requests to delete an account or personal data are handled by our team, so I've passed "
                        "yours on.",
    "legal": "I've passed your message to our team, who will handle it.",
    "security_incident": "That sounds like it may be a security issue, so I've alerted our team right away.",
    "low_confidence": "I'm not confident in this answer, so I've asked a member of our team to check it.",
    "max_failed_responses": "I haven't been able to answer this, so I'm bringing in a member of our team.",
    "max_conversation_length": "This conversation has run long, so a member of our team will take it from here.",
}


def repeated_question(message_vector: Any, previous_vectors: Any, similarity: Callable[[Any, Any], float],
                      threshold: float = 0.9) -> bool:
    """PRD §5.5.5: asking the same thing again counts toward frustration."""
    return any(similarity(message_vector, v) >= threshold for v in previous_vectors)

"""Intent (PRD §5.5.4) and sentiment (PRD §5.5.5) of a customer message, computed locally without an LLM.

Intent: the nearest labelled examples in the embedding space the retriever already uses (k-nearest vote over a
small hand-written set, product-neutral on purpose), with lexicon rules first for the few intents a word decides
(greetings, thanks, asking for a person). Sentiment: a lexicon score with negation, intensifiers, shouting and
exclamation marks — cheap, explainable, and good enough to feed the frustration trigger, which never relies on
sentiment alone.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

INTENT_EXAMPLES: dict[str, tuple[str, ...]] = {
    "password_reset": ("I forgot my password", "how do I reset my password", "password reset email never came"),
    "account_creation": ("how do I sign up", "create a new account", "can I register with my work email"),
    "login_issue": ("I can't log in", "locked out of my account", "login keeps failing", "two factor code not working"),
    "account_deletion": ("how do I delete my account", "close my account", "remove my profile and data"),
    "billing_question": ("why was I charged", "where are my invoices", "when will I be billed",
                         "what payment methods do you accept", "add tax id to invoice"),
    "subscription_upgrade": ("how do I upgrade my plan", "switch to the pro plan", "buy more seats"),
    "subscription_cancel": ("cancel my subscription", "how do I stop my plan", "pause my subscription"),
    "refund_request": ("I want a refund", "refund my payment", "give me my money back", "how do refunds work"),
    "payment_issue": ("my card was declined", "payment failed", "credit card keeps getting rejected"),
    "technical_issue": ("I get an error when uploading", "it's not working", "request fails with 500 error",
                        "getting 429 too many requests", "my deployment keeps crashing"),
    "feature_question": ("can I make my project private", "does it support custom domains",
                         "how do I turn on notifications", "is there a limit on storage"),
    "integration_help": ("how do I connect with github", "set up ssh keys for git", "use the api from python",
                         "webhook integration"),
    "bug_report": ("I found a bug", "the button does nothing", "the page shows wrong data"),
    "pricing_inquiry": ("how much does it cost", "price per hour", "what are your plans and prices"),
    "feature_request": ("please add dark mode", "it would be great if you supported", "can you build a feature"),
    "product_comparison": ("how are you different from competitors", "team vs enterprise plan differences"),
    "general_question": ("what is this product", "who are you", "do you have documentation"),
    "greeting": ("hi", "hello there", "good morning"),
    "gratitude": ("thanks", "thank you so much", "that helped, thanks"),
    "complaint": ("this is the worst service ever", "I'm very unhappy with your support", "this is unacceptable"),
    "speak_to_human": ("I want to talk to a human", "connect me with an agent", "can someone call me"),
}
INTENTS = (*INTENT_EXAMPLES, "unknown")
K = 3
MIN_SIMILARITY = 0.35  # below this the nearest example is not really near: intent unknown

_GREETING = re.compile(r"^\s*(hi|hello|hey|hiya|good (morning|afternoon|evening))\b[\s!.,]*$", re.I)
_THANKS = re.compile(r"^\s*(thanks|thank you|thx|ty|cheers|much appreciated)\b[\w\s!.,]*$", re.I)
_HUMAN = re.compile(r"\b(human|real person|live agent|representative|someone from|a person|manager|supervisor)\b",
                    re.I)


@dataclass
class Intent:
    intent: str
    confidence: float
    entities: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Sentiment:
    sentiment: str  # very_negative | negative | neutral | positive | very_positive
    score: float    # -1..1
    emotions: list[str] = field(default_factory=list)


class IntentClassifier:
    """Embeds the labelled examples once per embedder; thread-safe after the first call."""

    def __init__(self, embedder: Any):
        self.embedder = embedder
        self._labels: list[str] = []
        self._matrix: np.ndarray | None = None
        self._lock = threading.Lock()

    def _examples(self) -> tuple[list[str], np.ndarray]:
        with self._lock:
            if self._matrix is None:
                pairs = [(label, text) for label, texts in INTENT_EXAMPLES.items() for text in texts]
                self._labels = [label for label, _ in pairs]
                self._matrix = np.asarray(self.embedder.encode([text for _, text in pairs]), dtype=np.float32)
        return self._labels, self._matrix

    def classify(self, message: str, vector: np.ndarray | None = None) -> Intent:
        ruled = rule_intent(message)
        if ruled is not None:
            return ruled
        labels, matrix = self._examples()
        if vector is None:
            vector = self.embedder.encode([message])[0]
        sims = matrix @ np.asarray(vector, dtype=np.float32)
        top = np.argsort(-sims)[:K]
        if float(sims[top[0]]) < MIN_SIMILARITY:
            return Intent("unknown", round(float(max(sims[top[0]], 0.0)), 3))
        votes: dict[str, float] = {}
        for i in top:
            votes[labels[i]] = votes.get(labels[i], 0.0) + float(sims[i])
        best = max(votes, key=lambda label: votes[label])
        share = votes[best] / sum(votes.values())
        return Intent(best, round(min(1.0, share * float(sims[top[0]]) / 0.7), 3))


def rule_intent(message: str) -> Intent | None:
    if _GREETING.match(message):
        return Intent("greeting", 0.95)
    if _THANKS.match(message):
        return Intent("gratitude", 0.95)
    if _HUMAN.search(message) and re.search(r"\b(talk|speak|chat|connect|call|get|want|need|escalate)\b", message,
                                            re.I):
        return Intent("speak_to_human", 0.9)
    return None


# --- sentiment --------------------------------------------------------------------------------------------
LEXICON: dict[str, float] = {
    # strongly negative: anger and contempt
    "worst": -3, "horrible": -3, "terrible": -3, "awful": -3, "useless": -3, "ridiculous": -3, "pathetic": -3,
    "furious": -3, "unacceptable": -3, "disgusting": -3, "scam": -3, "rip-off": -3, "ripoff": -3, "hate": -3,
    "angry": -2.5, "outraged": -3, "incompetent": -3, "joke": -1.5, "wtf": -3, "garbage": -3, "trash": -2.5,
    # negative: disappointment and trouble
    "frustrated": -2.5, "frustrating": -2.5, "annoyed": -2, "annoying": -2, "upset": -2, "disappointed": -2,
    "disappointing": -2, "bad": -1.5, "poor": -1.5, "broken": -1.5, "ignored": -2, "ignores": -2,
    "ignoring": -2, "wrong": -1, "fail": -1, "failed": -1, "fails": -1, "failing": -1, "rejected": -1,
    "stuck": -1, "sick": -1.5, "fed": -0.5, "nasty": -1.5, "problem": -0.5, "issue": -0.3, "error": -0.3,
    "unhappy": -2, "slow": -1, "never": -0.5, "nobody": -1, "leaked": -1.5, "hacked": -2, "lost": -1,
    # positive
    "thanks": 1.5, "thank": 1.5, "great": 2, "awesome": 2.5, "excellent": 2.5, "love": 2.5, "perfect": 2.5,
    "amazing": 2.5, "helpful": 2, "good": 1, "nice": 1.5, "appreciate": 2, "happy": 2, "wonderful": 2.5,
    "fantastic": 2.5, "brilliant": 2.5, "glad": 1.5, "works": 0.5, "solved": 1.5,
}
NEGATIONS = {"not", "no", "never", "don't", "dont", "isn't", "isnt", "wasn't", "wasnt", "didn't", "didnt",
             "doesn't", "doesnt", "can't", "cant", "won't", "wont"}
INTENSIFIERS = {"very": 1.5, "so": 1.4, "really": 1.4, "extremely": 1.8, "totally": 1.5, "absolutely": 1.6,
                "completely": 1.5, "super": 1.4}
_WORD = re.compile(r"[a-zA-Z][a-zA-Z'\-]*")


def sentiment(message: str) -> Sentiment:
    words = _WORD.findall(message)
    total, emotions = 0.0, []
    for i, word in enumerate(words):
        value = LEXICON.get(word.lower())
        if value is None:
            continue
        before = [w.lower() for w in words[max(0, i - 3):i]]
        if any(w in NEGATIONS for w in before) and word.lower() not in ("never", "nobody"):
            value = -value * 0.6
        value *= max([INTENSIFIERS.get(w, 1.0) for w in before] or [1.0])
        total += value
    total += _shouting(message, words)
    score = max(-1.0, min(1.0, total / 6.0))
    if score <= -0.4:
        emotions.append("frustrated")
    if "!" in message and score < 0 or re.search(r"\b(now|immediately|asap|today)\b", message, re.I):
        emotions.append("urgent")
    return Sentiment(_label(score), round(score, 3), emotions)


def _shouting(message: str, words: list[str]) -> float:
    """Several exclamation marks or shouted words add anger, but only on top of words that are already negative
    or when they dominate: one capitalised word ("charged AGAIN") is emphasis, not rage."""
    bangs = message.count("!")
    shouted = sum(1 for w in words if len(w) >= 3 and w.isupper())
    penalty = 0.0
    if bangs >= 3:
        penalty -= 1.0
    if shouted >= 3 or (words and shouted / len(words) > 0.5 and len(words) >= 3):
        penalty -= 1.5
    return penalty


def _label(score: float) -> str:
    if score <= -0.6:
        return "very_negative"
    if score <= -0.2:
        return "negative"
    if score >= 0.6:
        return "very_positive"
    if score >= 0.2:
        return "positive"
    return "neutral"

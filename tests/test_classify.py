"""Intent and sentiment computed locally (PRD §5.5.4–5.5.5): nearest labelled examples with the real embedder,
lexicon rules for sentiment."""

from __future__ import annotations

import pytest

from chatsupport.llm.classify import INTENTS, IntentClassifier, sentiment


@pytest.mark.parametrize(("text", "intent"), [
    ("hello!", "greeting"), ("thanks a lot", "gratitude"), ("can I speak to a real person", "speak_to_human"),
    ("I forgot my password and the reset mail never arrives", "password_reset"),
    ("my card was declined when paying", "payment_issue"),
    ("how much does the business plan cost per month", "pricing_inquiry"),
    ("please cancel my subscription", "subscription_cancel"),
])
def test_intent_is_the_nearest_labelled_example(embedder, text: str, intent: str) -> None:  # noqa: ANN001
    result = IntentClassifier(embedder).classify(text)
    assert result.intent == intent and 0 < result.confidence <= 1


def test_unrelated_text_is_unknown_or_low_confidence(embedder) -> None:  # noqa: ANN001
    result = IntentClassifier(embedder).classify("purple elephants dance at midnight")
    assert result.intent in INTENTS and (result.intent == "unknown" or result.confidence < 0.6)


@pytest.mark.parametrize(("text", "label"), [
    ("worst service ever, absolutely useless", "very_negative"),
    ("this is ridiculous!!! nobody answers", "very_negative"),
    ("I'm a bit disappointed with the slow support", "negative"),
    ("where can I find my invoices", "neutral"),
    ("just got charged AGAIN, why?", "neutral"),
    ("thanks, that was helpful", "positive"),
    ("awesome, you are amazing, thank you so much", "very_positive"),
    ("not bad at all", "neutral"),
])
def test_sentiment_labels(text: str, label: str) -> None:
    result = sentiment(text)
    assert result.sentiment == label, result
    assert -1 <= result.score <= 1


def test_frustrated_and_urgent_emotions() -> None:
    assert "frustrated" in sentiment("this is terrible and useless").emotions
    assert "urgent" in sentiment("fix it now").emotions

"""Customer text → a safe FTS5 MATCH expression.

Anything a visitor types is reduced to word tokens, each quoted as an FTS5 string and OR-ed, so quotes, ``NEAR``,
``*``, column filters, parentheses or SQL-looking text can never become FTS5 syntax (and never raise). Chat
filler and question words are dropped because OR-ed they would match nearly every passage; if nothing but filler
is left, the filler is searched after all.
"""

from __future__ import annotations

import re

MAX_TERMS = 32
STOPWORDS = frozenset("""
a about above after again against all am an and any are aren as at be because been before being below between
both but by can cannot could couldn did didn do does doesn doing don down during each few for from further get
gets getting got had hadn has hasn have haven having he her here hers herself him himself his how i if in into is
isn it its itself just let me might more most must mustn my myself no nor not now of off on once only or other
ought our ours ourselves out over own same shan she should shouldn so some such than that the their theirs them
themselves then there these they this those through to too under until up very was wasn we were weren what when
where which while who whom why will with won would wouldn you your yours yourself yourselves ll ve re s t d m
hi hello hey please thanks thank pls plz ok okay hmm um uh yes yeah yep guys anyone someone somebody help
want wanna need trying tried try way still also really something anything thing things im ive dont cant
""".split())
TOKEN = re.compile(r"\w+", re.UNICODE)


def terms(text: str) -> list[str]:
    """Distinct lower-cased word tokens, filler removed unless nothing else remains."""
    words = [w.lower() for w in TOKEN.findall(text or "") if w.strip("_")]
    seen: dict[str, None] = {}
    for word in words:
        seen.setdefault(word.strip("_"), None)
    distinct = [w for w in seen if w]
    content = [w for w in distinct if w not in STOPWORDS]
    return (content or distinct)[:MAX_TERMS]


def match_expression(text: str) -> str:
    """An FTS5 query OR-ing every term as a quoted string; empty when the text has no words."""
    return " OR ".join(f'"{term}"' for term in terms(text))

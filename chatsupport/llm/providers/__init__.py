"""Answer providers behind ``llm.base.Provider``: ``local`` (GGUF via llama-cpp-python), ``openai_compat``
(Chat Completions), ``anthropic`` (Messages API) and ``extractive`` (no model). ``llm.chain`` orders them.

Each provider has ``name`` and ``cloud``: cloud providers mask PII before sending (``llm.privacy``) and count
against the workspace's daily token cap. Nothing here imports ``llama_cpp`` at import time.
"""

CLOUD_KINDS = ("openai", "anthropic")

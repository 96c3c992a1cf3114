"""Outbound network access: the one guarded way the product reaches other machines (crawler, webhooks, LLMs)."""

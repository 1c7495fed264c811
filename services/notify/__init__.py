"""The notify service: in-app inbox, SMS / WeCom / DingTalk / e-mail / webhook channels, templates, preferences and escalation chains."""

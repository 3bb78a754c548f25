"""Announces every published blog post on a Slack-compatible webhook.

The plugin listens to ``blogger:post:published`` (see `webos_notifier.hooks`)
and posts ``{"text": "New post: <title> by <author> (/blog/posts/<slug>)"}`` to
``WEBOS_NOTIFIER_WEBHOOK_URL``. Delivery failures are logged, never raised: a
chat outage must not fail a publish. Settings: `webos_notifier.settings`.
"""

__version__ = "0.1.0"

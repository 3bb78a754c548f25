"""An audit trail of authentication in the log: sign-ups, logins, failed logins, logouts.

Each ``auth:*`` event becomes one loguru INFO line such as
``AUDIT: User ada@example.com has entered the system. [event <id> from auth]``.
The sentence is fixed (people grep for it); the event's id and source follow it,
and are bound as ``event_id``, ``event_source`` and ``event_time`` for structured
sinks. The listeners are in `webos_audit.hooks`.
"""

__version__ = "0.1.0"

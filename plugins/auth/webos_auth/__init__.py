"""WebOS accounts: register, log in for a bearer token, log out.

The kernel imports ``events`` (the declared events), ``hooks`` (who is making
a request) and ``router`` (the ``/auth`` routes) itself; this package only
names the plugin.
"""

__version__ = "0.1.0"

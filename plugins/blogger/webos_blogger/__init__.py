"""WebOS blog: logged-in users publish posts, anyone reads them.

The kernel imports ``events`` and ``router`` itself; this package only names the plugin.
"""

__version__ = "0.1.0"

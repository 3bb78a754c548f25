"""Plugins that ship inside the kernel package. They load like any other plugin."""

"""Logging: loguru for everything, standard ``logging`` (uvicorn's) routed into it."""

from __future__ import annotations

import inspect
import logging
import sys

from loguru import logger

__all__ = ["configure_logging"]

FORMAT = (
    "<green>{time:HH:mm:ss.SSS}</green> | <level>{level: <8}</level> | "
    "<cyan>{name}</cyan> - <level>{message}</level>"
)


class _InterceptHandler(logging.Handler):
    """Send standard-library log records to loguru (the recipe from loguru's docs)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame is not None and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def configure_logging(level: str = "INFO") -> None:
    """One loguru sink on stdout; uvicorn's loggers go through it too."""
    logger.remove()
    logger.add(sys.stdout, level=level.upper(), format=FORMAT, colorize=None, enqueue=False)
    logging.basicConfig(handlers=[_InterceptHandler()], level=0, force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        std = logging.getLogger(name)
        std.handlers = [_InterceptHandler()]
        std.propagate = False

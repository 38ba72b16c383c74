"""Test doubles: a scripted chat model that answers each role from its script."""

from .chat import ScriptedChatModel, role_of

__all__ = ["ScriptedChatModel", "role_of"]

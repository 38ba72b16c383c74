"""Test doubles: a scripted chat model that supports `with_structured_output`."""

from .chat import ScriptedChatModel, role_of

__all__ = ["ScriptedChatModel", "role_of"]

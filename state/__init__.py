"""Domain models, graph state and runtime context. Imports nothing else of ours."""

from state.context import Context, SettingError, clock
from state.domain import *  # noqa: F403 - the domain is this package's API
from state.errors import InvalidInput, describe
from state.graph_state import RadarInput, RadarOutput, RadarState, as_dict

"""One module per role. Each exposes a factory `create_<role>(llm) -> node` (or a
plain node where no model is involved); `llm=None` resolves the model per run from
the runtime context, or runs the role's offline policy."""

from agents.actuator import create_actuator, create_copywriter
from agents.ceo import create_ceo
from agents.cfo import create_cfo
from agents.cmo import create_cmo
from agents.enterprise import approval, enterprise_brief, enterprise_check, enterprise_record
from agents.scout import create_scout, scout_merge

__all__ = [
    "approval", "create_actuator", "create_ceo", "create_cfo", "create_cmo", "create_copywriter",
    "create_scout", "enterprise_brief", "enterprise_check", "enterprise_record", "scout_merge",
]

"""Reading runs back from checkpoints: status, the decision, the history.

One place decides what a thread's status is, so that `run --json`, `show`,
`threads` and the server report the same words.
"""

from __future__ import annotations

from typing import Any

from langgraph.types import StateSnapshot

from agents.pricing import PRICES, cost
from state import RunStatus, Usage, as_dict


def status_of(snapshot: StateSnapshot) -> RunStatus | None:
    """`None` for a thread that does not exist."""
    if not snapshot.values and not snapshot.next:
        return None
    if snapshot.interrupts:
        return "awaiting_approval"
    if any(task.error for task in snapshot.tasks):
        return "failed"
    if snapshot.values.get("status"):
        return snapshot.values["status"]
    # Tasks that all finished (writes saved) with no checkpoint after them: the process died
    # between a step's last write and its checkpoint. `next` is empty, yet the run goes on.
    return "running" if snapshot.next or snapshot.tasks else "failed"


def error_of(snapshot: StateSnapshot) -> str | None:
    errors = [f"{t.name}: {t.error}" for t in snapshot.tasks if t.error]
    return "; ".join(errors) or None


def decision(thread_id: str, snapshot: StateSnapshot, prices: dict | None = None) -> dict[str, Any]:
    """The JSON object `run --json` and `show --json` print."""
    values = as_dict(snapshot.values)
    plan = values.get("plan")
    status = status_of(snapshot)
    reason = values.get("reason") or (error_of(snapshot) if status == "failed" else None)
    if reason and "budget_exhausted" in reason:
        reason = "budget_exhausted: " + reason.split("budget_exhausted:", 1)[1].strip(" ')\"")
    return {
        "thread_id": thread_id,
        "checkpoint_id": snapshot.config["configurable"].get("checkpoint_id"),
        "status": status,
        "reason": reason,
        "provider": values.get("provider"),
        "brief": values.get("brief"),
        "round": values.get("round"),
        "scout": values.get("scout_report"),
        "source_errors": values.get("source_errors", []),
        "signals": values.get("signals", []),
        "debate": values.get("debate", []),
        "verdict": values.get("verdict"),
        "plan": plan,
        "forecast": plan["forecast"] if plan else None,
        "approval": values.get("approval"),
        "interrupt": snapshot.interrupts[0].value if snapshot.interrupts else None,
        "copy": values.get("copy", []),
        "campaign": values.get("campaign"),
        "usage": usage_summary(snapshot.values.get("usage"), prices),
        "next": list(snapshot.next),
    }


def usage_summary(usage: Usage | None, prices: dict | None = None) -> dict[str, Any]:
    """Calls, tokens and estimated USD cost, in total and by "role/model"."""
    usage = usage or Usage()
    costs = cost(usage, prices or PRICES)
    return {
        "calls": usage.calls, "tokens": usage.tokens, "cost_usd": costs["total"],
        "by_role_model": {k: {**v.model_dump(), "cost_usd": costs[k]} for k, v in usage.lines.items()},
    }


def history(snapshots: list[StateSnapshot]) -> list[dict[str, Any]]:
    """Checkpoints oldest first, each with the node(s) whose writes produced it."""
    ordered = list(reversed(snapshots))
    rows = []
    for before, snap in zip([None, *ordered], ordered):
        if before is None:
            nodes, changes = ["input"], "brief received"
        else:
            done = [t for t in before.tasks if t.result is not None or t.interrupts]
            nodes = [t.name for t in done] or ["update"]
            changes = "; ".join(filter(None, (summarize(t.name, t.result) for t in done))) or "state updated"
        rows.append({
            "checkpoint_id": snap.config["configurable"]["checkpoint_id"],
            "step": snap.metadata.get("step"),
            "source": snap.metadata.get("source"),
            "nodes": nodes,
            "time": snap.created_at,
            "summary": changes,
        })
    return rows


def summarize(node: str, result: dict[str, Any] | None) -> str:
    """One line on what a node wrote."""
    if not result:
        return ""
    if node == "__start__":
        brief = result.get("brief") or {}
        goal = brief.get("goal", "") if isinstance(brief, dict) else brief.goal
        return f"brief: {goal[:60]}"
    parts = []
    if "fetched" in result and result["fetched"]:
        parts.append(f"fetched {len(result['fetched'])} signals")
    if result.get("source_errors"):
        parts.append(f"{len(result['source_errors'])} source errors")
    if "signals" in result:
        parts.append(f"kept {len(result['signals'])} signals")
    if "snapshot" in result:
        s = result["snapshot"]
        parts.append(f"product {s.product.sku if s.product else '-'}, budget left {s.budget_left:,.0f}")
    for turn in result.get("debate", []):
        parts.append(f"{turn.role} r{turn.round} {turn.stance}")
    if "verdict" in result:
        v = result["verdict"]
        parts.append(f"verdict {v.action}" + (f" {v.budget:,.0f}" if v.budget else ""))
    if "plan" in result:
        parts.append(f"plan {result['plan'].budget:,.0f} on {', '.join(sorted(result['plan'].channels))}")
    if "copy" in result:
        parts.append(f"copy for {len(result['copy'])} channels")
    if "campaign" in result:
        parts.append(f"executed {result['campaign'].spend:,.0f} ({result['campaign'].status})")
    if "status" in result:
        parts.append(f"status {result['status']}" + (f": {result['reason']}" if result.get("reason") else ""))
    return ", ".join(parts)

"""Enterprise: the business numbers before the debate, policy after it, the record at the end.

No LLM here. The nodes read and write the store and call the forecast and the
policy in tools/, so that no model output can spend what policy forbids.
"""

from __future__ import annotations

import json

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import ValidationError

from state import (
    ApprovalDecision,
    Brief,
    BusinessSnapshot,
    Context,
    Plan,
    ProductFacts,
    RadarState,
    SignalDigest,
    clock,
    describe,
)
from tools.ads import campaign_id_for
from tools.forecast import forecast
from tools.policy import check
from tools.seed import open_store
from tools.signals import terms
from tools.store import period_of


def match_product(brief: Brief, products: list[ProductFacts]) -> ProductFacts | None:
    """The brief's SKU, or the product whose name and category best match the goal."""
    if brief.product:
        return next((p for p in products if p.sku == brief.product), None)
    wanted = terms(" ".join([brief.goal, *brief.keywords]))

    def fit(p: ProductFacts) -> tuple[int, float]:
        have = terms(f"{p.name} {p.category}")
        return len(wanted & have), len(wanted & have) / len(wanted | have)

    best = max(products, key=fit, default=None)
    return best if best and fit(best)[0] > 0 else None


def demand_index(signals: list[SignalDigest]) -> float:
    """1 ± 0.2 by the relevance-weighted sentiment of the kept signals."""
    weight = sum(s.relevance for s in signals)
    if not weight:
        return 1.0
    mood = sum(s.sentiment * s.relevance for s in signals) / weight
    return round(1.0 + 0.2 * mood, 3)


def enterprise_brief(state: RadarState, runtime: Runtime[Context]) -> dict:
    """Snapshot of what the debate must respect: product, stock, budget left, channel economics."""
    context, brief = runtime.context, state["brief"]
    now = clock(context)
    with open_store(context.home, now) as store:
        product = match_product(brief, store.products())
        snapshot = BusinessSnapshot(
            period=period_of(now),
            budget_left=store.budget_left(period_of(now)),
            currency=brief.currency,
            product=product,
            channels=store.channels(),
            lessons=store.lessons(product.sku if product else None),
            demand_index=demand_index(state.get("signals", [])),
        )
    update: dict = {"snapshot": snapshot, "round": 1}
    if product is None:
        what = f"unknown product {brief.product!r}" if brief.product else "no product in the catalogue matches the goal"
        update |= {"status": "rejected", "reason": f"{what}; name one with --product SKU"}
    elif product.stock <= 0:
        update |= {"status": "rejected", "reason": f"{product.sku} is out of stock: nothing to advertise"}
    elif (cap := min(brief.budget, snapshot.budget_left)) < (cheapest := _cheapest_minimum(brief, snapshot)):
        # Less than any allowed channel's minimum buys nothing: say so instead of debating an empty plan.
        update |= {"status": "rejected", "reason": f"{cap:,.2f} {brief.currency} (the brief's cap or the budget left "
                   f"in {snapshot.period}) is below the minimum spend of every allowed channel ({cheapest:,.2f})"}
    return update


def _cheapest_minimum(brief: Brief, snapshot: BusinessSnapshot) -> float:
    """The lowest minimum spend among the brief's channels (infinite when none has economics)."""
    return min((c.min_spend for c in snapshot.channels if c.name in brief.channels), default=float("inf"))


def enterprise_check(state: RadarState, runtime: Runtime[Context], config: RunnableConfig) -> dict:
    """Policy in code on the CEO's verdict: clamp what can be clamped, reject what cannot."""
    context, brief, verdict = runtime.context, state["brief"], state["verdict"]
    now = clock(context)
    with open_store(context.home, now) as store:
        product = store.product(verdict.product_sku) if verdict.product_sku else None
        economics = {c.name: c for c in store.channels()}
        budget_left = store.budget_left(period_of(now))
    outcome = check(
        verdict, brief, product=product, economics=economics, budget_left=budget_left,
        hurdle_roi=context.hurdle_roi, demand_index=state["snapshot"].demand_index,
        draws=context.forecast_draws, seed=context.seed,
    )
    if not outcome.approved:
        return {"status": "rejected", "reason": outcome.rejection}
    thread_id = config["configurable"]["thread_id"]
    plan = Plan(
        campaign_id=campaign_id_for(thread_id, product.sku, outcome.allocation),
        product_sku=product.sku,
        budget=round(sum(outcome.allocation.values()), 2),
        channels=outcome.allocation,
        forecast=outcome.forecast,
        adjustments=outcome.adjustments,
    )
    return {"plan": plan}


def approval(state: RadarState, runtime: Runtime[Context], config: RunnableConfig) -> dict:
    """Plans at or above the auto-approve threshold wait for a human (`interrupt`).

    Resume payload: {"approved": bool, "budget": optional lower cap, "reason": optional text}.
    """
    plan = state["plan"]
    if plan.budget < runtime.context.auto_approve_below:
        return {}
    request = {"question": "approve this plan?", "plan": plan.model_dump(mode="json"),
               "resume_with": {"approved": "true|false", "budget": "optional lower cap",
                               "reason": "optional text"}}
    while True:
        answer = interrupt(request)
        try:
            return _decide(answer, plan, state, runtime, config)
        except InvalidApproval as exc:
            # Refused answers are asked again, the error in the new interrupt: LangGraph keeps a
            # consumed resume value with the task and replays it on every later run, so raising
            # here would lock the thread on the refused answer.
            request = {**request, "error": str(exc)}


class InvalidApproval(ValueError):
    """A resume payload that cannot be applied (the approver is asked again)."""


def _decide(answer: object, plan: Plan, state: RadarState, runtime: Runtime[Context], config: RunnableConfig) -> dict:
    try:
        decision = ApprovalDecision.model_validate(answer)
    except ValidationError as exc:
        raise InvalidApproval("approval payload is invalid:\n" + describe(exc, "resume")) from None
    if not decision.approved:
        return {"approval": decision, "status": "rejected",
                "reason": f"rejected at approval: {decision.reason or 'no reason given'}"}
    if decision.budget is not None and decision.budget > plan.budget:
        raise InvalidApproval(f"resume.budget: {decision.budget:,.2f} is above the plan's {plan.budget:,.2f}; "
                              "approval can only lower spend")
    if decision.budget is None or decision.budget == plan.budget:
        return {"approval": decision}
    return {"approval": decision, "plan": _lowered(plan, decision.budget, state, runtime, config)}


def _lowered(plan: Plan, budget: float, state: RadarState, runtime: Runtime[Context], config: RunnableConfig) -> Plan:
    """The plan re-checked by policy under the approver's lower cap."""
    verdict = state["verdict"].model_copy(update={"budget": budget, "channels": plan.channels})
    context = runtime.context
    with open_store(context.home, clock(context)) as store:
        product = store.product(plan.product_sku)
        economics = {c.name: c for c in store.channels()}
        left = store.budget_left(period_of(clock(context)))
    outcome = check(verdict, state["brief"], product=product, economics=economics, budget_left=left,
                    hurdle_roi=context.hurdle_roi, demand_index=state["snapshot"].demand_index,
                    draws=context.forecast_draws, seed=context.seed)
    if not outcome.approved:
        raise InvalidApproval(f"resume.budget: {budget:,.2f} leaves no valid plan ({outcome.rejection})")
    channels = outcome.allocation
    return plan.model_copy(update={
        "campaign_id": campaign_id_for(config["configurable"]["thread_id"], plan.product_sku, channels),
        "budget": round(sum(channels.values()), 2), "channels": channels, "forecast": outcome.forecast,
        "adjustments": [*plan.adjustments, f"approver lowered the budget to {budget:,.2f}",
                        *outcome.adjustments],
    })


def enterprise_record(state: RadarState, runtime: Runtime[Context]) -> dict:
    """Close the campaign in the store and keep its lesson for later debates."""
    context, plan, campaign = runtime.context, state["plan"], state["campaign"]
    top = max(plan.forecast.channels, key=lambda c: c.units, default=None)
    lesson = (
        f"{plan.product_sku}: planned {plan.budget:,.0f} on {', '.join(sorted(plan.channels))}; "
        f"forecast p50 ROI {plan.forecast.roi.p50:.2f}"
        + (f", {top.channel} expected to sell most ({top.units:.0f} units)" if top else "")
        + f"; executed {campaign.spend:,.0f}."
    )
    with open_store(context.home, clock(context)) as store:
        store.close_campaign(campaign.id, campaign.status, (lesson, plan.product_sku))
    status = "executed" if campaign.status == "executed" else "failed"
    update: dict = {"status": status}
    if status == "failed":
        failed = [e.channel for e in campaign.executions if e.status == "failed"]
        update["reason"] = f"the platform refused {', '.join(failed)}; the rest was executed once"
    return update


def plan_forecast(state: RadarState, runtime: Runtime[Context], channels: dict[str, float]):
    """Forecast of an allocation for the debate's product (used by the debate roles)."""
    snapshot = state["snapshot"]
    economics = {c.name: c for c in snapshot.channels}
    return forecast(snapshot.product, channels, economics, draws=runtime.context.forecast_draws,
                    seed=runtime.context.seed, demand_index=snapshot.demand_index)


def record_of(state: RadarState) -> dict[str, str]:
    """What the campaigns table keeps about the decision."""
    return {
        "brief": state["brief"].model_dump_json(),
        "verdict": state["verdict"].model_dump_json(),
        "plan": json.dumps(state["plan"].model_dump(mode="json", exclude={"forecast"})),
        "forecast": state["plan"].forecast.model_dump_json(),
    }

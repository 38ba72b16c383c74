"""`leadboost`: run, inspect and resume decisions on the local SQLite checkpoints.

Every command goes through the same checkpointed graph as the Python API; the
CLI only validates input, streams progress to stderr and renders the result.
Exit codes: 0 decided (or awaiting approval), 2 bad input, 1 failure.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import uuid
from typing import Any

import typer
from langgraph.types import Command
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.markup import escape

from agents.llm import provider_label
from agents.pricing import price_table
from graph.builder import build_graph
from graph.nodes import configure_logging
from graph.checkpoints import checkpoint_path, sqlite_checkpointer
from graph.report import print_report
from graph.runs import decision, history, status_of, summarize
from state import ApprovalDecision, Brief, Context, SettingError, clock, describe
from tools.seed import open_store, seed
from tools.sources import SOURCE_NAMES
from tools.store import Store, period_of

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.split("\n")[0])
db_app = typer.Typer(no_args_is_help=True, help="The enterprise store.")
app.add_typer(db_app, name="db")
err = Console(stderr=True)
THREAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class BadInput(Exception):
    """Exit code 2: the message names the field and the rule."""


def main() -> None:
    configure_logging()
    try:
        code = app(standalone_mode=False)  # not standalone: `typer.Exit(n)` comes back as n, not as an exit
    except BadInput as exc:  # (messages quote the input: escaped, or "[/]" in it would crash rich)
        err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors carry their own exit code
        code = getattr(exc, "exit_code", 1)
        if hasattr(exc, "show"):
            exc.show()
        else:
            err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2 if code == 2 else 1)
    if isinstance(code, int) and code:
        sys.exit(code)


def context() -> Context:
    try:
        ctx = Context()
    except SettingError as exc:
        raise BadInput(str(exc)) from None
    unknown = [name for name in ctx.source_names if name not in SOURCE_NAMES]
    if unknown:  # else the run would start, write its thread and fail in scout
        raise BadInput(f"context.sources (LEADBOOST_SOURCES): unknown source {unknown[0]!r} "
                       f"(known: {', '.join(SOURCE_NAMES)})")
    return ctx


def thread_config(thread_id: str, checkpoint_id: str | None = None) -> dict[str, Any]:
    if not THREAD_ID.match(thread_id):
        raise BadInput(f"thread: {thread_id!r} is not a valid thread id (letters, digits, _.:- up to 64)")
    configurable = {"thread_id": thread_id}
    if checkpoint_id:
        configurable |= {"checkpoint_id": checkpoint_id, "checkpoint_ns": ""}
    return {"configurable": configurable}


def budget_from_goal(goal: str) -> float | None:
    """'... up to 8,000 EUR' -> 8000.0; None when the goal names no amount."""
    match = re.search(r"(\d[\d.,]*)\s*(k)?\s*(?:eur|euros?|€|usd|\$)", goal, re.I)
    if not match:
        return None
    digits = re.sub(r"[.,](?=\d{3}\b)", "", match.group(1)).replace(",", ".")
    try:
        value = float(digits)
    except ValueError:
        return None
    return value * 1000 if match.group(2) else value


# -- running ------------------------------------------------------------------


def execute(graph_input: Any, config: dict[str, Any], ctx: Context, as_json: bool, quiet: bool = False) -> int:
    """Stream the graph (progress to stderr), then print the report or the JSON object."""
    config = {**config, "run_name": "radar", "tags": ["leadboost", f"provider:{provider_label(ctx)}"],
              "metadata": {"thread_id": config["configurable"]["thread_id"], "provider": provider_label(ctx),
                           "deep_model": ctx.deep_model, "quick_model": ctx.quick_model,
                           "goal": _goal_of(graph_input)}}
    with sqlite_checkpointer(ctx.home) as saver:
        graph = build_graph(saver)
        failure = None
        try:
            # durability "sync": each step's checkpoint is on disk before the next step starts, so a
            # process killed anywhere (even in the first node) leaves a thread `resume` can finish
            for chunk in graph.stream(graph_input, config, context=ctx, stream_mode="updates", durability="sync"):
                for node, update in chunk.items():
                    if not quiet and node != "__interrupt__":
                        err.print(f"[green]✓[/] {node}" + _progress(update))
        except Exception as exc:  # the thread keeps its checkpoints: `leadboost resume` picks it up
            failure = exc
        thread_id = config["configurable"]["thread_id"]
        snapshot = graph.get_state(thread_config(thread_id))  # the head: where this run ended
    result = decision(thread_id, snapshot, price_table(ctx.prices))
    if failure is not None and result["status"] != "failed":
        result |= {"status": "failed", "reason": f"{type(failure).__name__}: {failure}"}
    if as_json:
        print(json.dumps(result, default=str))
    else:
        print_report(result, ledger_of(ctx) if result.get("campaign") else None)
        if result["status"] == "failed":
            err.print(f"[red]failed:[/] {escape(result['reason'] or '')}\nresume with: leadboost resume {result['thread_id']}")
    return 1 if result["status"] == "failed" else 0


def _goal_of(graph_input: Any) -> str | None:
    return graph_input["brief"]["goal"][:200] if isinstance(graph_input, dict) else None


def _progress(update: Any) -> str:
    if not isinstance(update, dict):
        return ""
    line = summarize("", update)
    return f"  [dim]{line}[/]" if line else ""


def ledger_of(ctx: Context) -> dict[str, Any]:
    period = period_of(clock(ctx))
    with open_store(ctx.home, clock(ctx)) as store:
        return {"period": period, "spent": store.spent(period), "budget_left": store.budget_left(period)}


@app.command()
def run(
    goal: str = typer.Option(..., help="What the campaign should achieve."),
    product: str | None = typer.Option(None, help="Product SKU (default: the product the goal names)."),
    budget: float | None = typer.Option(None, help="Spend cap (default: the amount named in the goal)."),
    currency: str = typer.Option("EUR"),
    channels: str | None = typer.Option(None, help="Allowed channels, comma-separated."),
    market: str | None = typer.Option(None, help="ISO country code, e.g. ES."),
    keywords: str | None = typer.Option(None, help="Extra keywords for Scout, comma-separated."),
    rounds: int = typer.Option(2, help="Debate rounds at most (1-5)."),
    thread: str | None = typer.Option(None, help="Thread id (default: a new one)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Decide (and execute) a campaign for a goal."""
    ctx = context()
    fields: dict[str, Any] = {"goal": goal, "currency": currency, "max_rounds": rounds}
    amount = budget if budget is not None else budget_from_goal(goal)
    if amount is None:
        raise BadInput("brief.budget: required: give --budget or name the amount in the goal (e.g. 8,000 EUR)")
    fields["budget"] = amount
    for name, value in (("product", product), ("market", market)):
        if value is not None:
            fields[name] = value
    if channels is not None:
        fields["channels"] = [c.strip() for c in channels.split(",") if c.strip()]
    if keywords is not None:
        fields["keywords"] = [k.strip() for k in keywords.split(",") if k.strip()]
    try:
        brief = Brief.model_validate(fields)
    except ValidationError as exc:
        raise BadInput(describe(exc, "brief")) from None
    thread_id = thread or f"run-{uuid.uuid4().hex[:12]}"
    config = thread_config(thread_id)
    with open_store(ctx.home, clock(ctx)) as store:
        if brief.product and store.product(brief.product) is None:
            raise BadInput(f"brief.product: unknown SKU {brief.product!r} (see `leadboost db show`)")
    with sqlite_checkpointer(ctx.home) as saver:
        if build_graph(saver).get_state(config).values:
            raise BadInput(f"thread: {thread_id!r} already exists; use `leadboost resume` or another --thread")
    raise typer.Exit(execute({"brief": brief.model_dump()}, config, ctx, as_json))


def _existing(thread_id: str, ctx: Context) -> dict[str, Any]:
    config = thread_config(thread_id)
    with sqlite_checkpointer(ctx.home) as saver:
        snapshot = build_graph(saver).get_state(config)
    if status_of(snapshot) is None:
        raise BadInput(f"thread: no thread {thread_id!r} in {checkpoint_path(ctx.home)}")
    return {"config": config, "snapshot": snapshot}


@app.command()
def resume(thread_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Continue a failed or interrupted run from its last checkpoint."""
    ctx = context()
    found = _existing(thread_id, ctx)
    if found["snapshot"].interrupts:
        raise BadInput(f"thread: {thread_id!r} awaits approval; use `leadboost approve` or `leadboost reject`")
    if not (found["snapshot"].next or found["snapshot"].tasks):  # (finished tasks of a cut step: resumable)
        raise BadInput(f"thread: {thread_id!r} is finished ({status_of(found['snapshot'])}); nothing to resume")
    raise typer.Exit(execute(None, found["config"], ctx, as_json))


def _answer(thread_id: str, payload: dict[str, Any], as_json: bool) -> None:
    ctx = context()
    try:
        answer = ApprovalDecision.model_validate(payload)
    except ValidationError as exc:
        raise BadInput(describe(exc, "resume")) from None
    found = _existing(thread_id, ctx)
    if not found["snapshot"].interrupts:
        raise BadInput(f"thread: {thread_id!r} is not awaiting approval (status {status_of(found['snapshot'])})")
    plan = found["snapshot"].values["plan"]
    if answer.budget is not None and answer.budget > plan.budget:
        raise BadInput(f"resume.budget: {answer.budget:,.2f} is above the plan's {plan.budget:,.2f}; "
                       "approval can only lower spend")
    payload = answer.model_dump(exclude_none=True)
    raise typer.Exit(execute(Command(resume=payload), found["config"], ctx, as_json))


@app.command()
def approve(
    thread_id: str,
    budget: float | None = typer.Option(None, help="Approve at this lower budget."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Approve a plan that awaits approval."""
    _answer(thread_id, {"approved": True, "budget": budget}, as_json)


@app.command()
def reject(
    thread_id: str,
    reason: str = typer.Option(..., help="Why the plan is rejected."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Reject a plan that awaits approval."""
    _answer(thread_id, {"approved": False, "reason": reason}, as_json)


# -- inspection ----------------------------------------------------------------


@app.command()
def threads(as_json: bool = typer.Option(False, "--json")) -> None:
    """List threads: id, created, status, goal, spend."""
    ctx = context()
    path = checkpoint_path(ctx.home)
    rows = []
    with sqlite_checkpointer(ctx.home) as saver:
        graph = build_graph(saver)
        conn = sqlite3.connect(path)
        ids = [r[0] for r in conn.execute(
            "SELECT thread_id FROM checkpoints WHERE checkpoint_ns = '' GROUP BY thread_id ORDER BY MIN(checkpoint_id)"
        )]
        conn.close()
        for thread_id in ids:
            snapshot = graph.get_state(thread_config(thread_id))
            first = list(graph.get_state_history(thread_config(thread_id)))[-1]
            values = snapshot.values
            campaign = values.get("campaign")
            rows.append({
                "thread_id": thread_id, "created": first.created_at, "status": status_of(snapshot),
                "goal": values["brief"].goal if hasattr(values.get("brief"), "goal") else
                (values.get("brief") or {}).get("goal", ""),
                "spend": campaign.spend if campaign else 0.0,
            })
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(title=f"Threads in {path}")
    for col in ("thread", "created", "status", "goal", "spend"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["thread_id"], r["created"][:19], r["status"], r["goal"][:50], f"{r['spend']:,.2f}")
    Console().print(table)


@app.command("history")
def history_cmd(thread_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """List a thread's checkpoints: id, step, node, time, what changed."""
    ctx = context()
    rows = _history(_existing(thread_id, ctx)["config"], ctx)
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = Table(title=f"History of {thread_id}")
    table.add_column("step")
    table.add_column("checkpoint", no_wrap=True)
    for col in ("node", "time", "summary"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["step"]), r["checkpoint_id"], ", ".join(r["nodes"]), r["time"][11:23], r["summary"])
    Console().print(table)


@app.command()
def show(
    thread_id: str,
    checkpoint: str | None = typer.Option(None, help="Checkpoint id (default: the latest)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show the state of a thread at a checkpoint."""
    ctx = context()
    snapshot = _checkpoint(thread_id, checkpoint, ctx)[1] if checkpoint else _existing(thread_id, ctx)["snapshot"]
    result = decision(thread_id, snapshot, price_table(ctx.prices))
    if as_json:
        print(json.dumps(result, default=str))
    else:
        print_report(result)


def _checkpoint(thread_id: str, checkpoint_id: str, ctx: Context) -> tuple[dict[str, Any], Any]:
    """The config and snapshot of a checkpoint that belongs to the thread."""
    _existing(thread_id, ctx)
    config = thread_config(thread_id, checkpoint_id)
    with sqlite_checkpointer(ctx.home) as saver:
        snapshot = build_graph(saver).get_state(config)
    if not snapshot.values:
        raise BadInput(f"checkpoint: {checkpoint_id!r} is not a checkpoint of thread {thread_id!r}")
    return config, snapshot


@app.command()
def replay(
    thread_id: str,
    checkpoint: str = typer.Option(..., help="Checkpoint id to re-run from (see `history`)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Re-run a thread from a checkpoint; side effects already executed are not repeated."""
    ctx = context()
    config, _ = _checkpoint(thread_id, checkpoint, ctx)
    raise typer.Exit(execute(None, config, ctx, as_json))


#: What `fork --set` may change: fields of the brief.
FORKABLE = ("goal", "budget", "channels", "market", "keywords", "max_rounds", "product", "currency")


@app.command()
def fork(
    thread_id: str,
    checkpoint: str = typer.Option(..., help="Checkpoint id to branch from (see `history`)."),
    set_: list[str] = typer.Option(..., "--set", help="field=value on the brief, e.g. budget=3000 (repeatable)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Branch a thread at a checkpoint with changed brief fields, and run the branch."""
    ctx = context()
    config, snapshot = _checkpoint(thread_id, checkpoint, ctx)
    brief = snapshot.values["brief"]
    fields = brief.model_dump() if isinstance(brief, Brief) else dict(brief)
    for item in set_:
        name, sep, value = item.partition("=")
        if not sep or name not in FORKABLE:
            raise BadInput(f"--set: {item!r} must be field=value with field one of {', '.join(FORKABLE)}")
        fields[name] = [v.strip() for v in value.split(",") if v.strip()] if name in ("channels", "keywords") else value
    try:
        changed = Brief.model_validate(fields)
    except ValidationError as exc:
        raise BadInput(describe(exc, "brief")) from None
    writers = {row["checkpoint_id"]: row["nodes"] for row in _history(config, ctx)}
    nodes = writers.get(checkpoint, [])
    if len(nodes) != 1 or nodes[0] in ("input", "__start__"):
        raise BadInput(f"checkpoint: fork from a checkpoint written by one node (this one: {', '.join(nodes)})")
    with sqlite_checkpointer(ctx.home) as saver:
        branch = build_graph(saver).update_state(config, {"brief": changed}, as_node=nodes[0])
    err.print(f"forked {thread_id} at {checkpoint} as checkpoint {branch['configurable']['checkpoint_id']}")
    raise typer.Exit(execute(None, branch, ctx, as_json))


def _history(config: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    head = {"configurable": {"thread_id": config["configurable"]["thread_id"]}}
    with sqlite_checkpointer(ctx.home) as saver:
        return history(list(build_graph(saver).get_state_history(head)))


@app.command()
def token(
    owner: str = typer.Option(..., help="Who the server will see (threads are private to an owner)."),
    ttl: str = typer.Option("1h", help="Lifetime: 30m, 1h, 2d."),
) -> None:
    """Print a bearer token for the `langgraph dev` server, signed with LEADBOOST_JWT_SECRET."""
    import os

    from graph.auth import mint_token

    secret = os.environ.get("LEADBOOST_JWT_SECRET", "")
    if not secret:
        raise BadInput("LEADBOOST_JWT_SECRET: not set; the server and this command must share it")
    match = re.fullmatch(r"(\d+)([smhd])", ttl.strip())
    if not match or int(match.group(1)) == 0:
        raise BadInput(f"ttl: {ttl!r} is not a positive duration like 30m, 1h or 2d")
    if not owner.strip():
        raise BadInput("owner: must not be empty")
    seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    print(mint_token(owner.strip(), seconds, secret))


# -- store ---------------------------------------------------------------------


@db_app.command("init")
def db_init() -> None:
    """Create the store and seed the demo company (idempotent)."""
    ctx = context()
    with Store.at_home(ctx.home) as store:
        created = seed(store, clock(ctx))
        Console().print(f"{'created' if created else 'already initialised'}: {store.path} (schema v{store.version})")


@db_app.command("show")
def db_show(as_json: bool = typer.Option(False, "--json")) -> None:
    """Budget left, stock and recent campaigns."""
    ctx = context()
    now = clock(ctx)
    with open_store(ctx.home, now) as store:
        data = {
            "period": period_of(now), "budget_left": store.budget_left(period_of(now)),
            "spent": store.spent(period_of(now)),
            "products": [p.model_dump() for p in store.products()],
            "campaigns": store.recent_campaigns(),
        }
    if as_json:
        print(json.dumps(data, default=str))
        return
    console = Console()
    console.print(f"[bold]{data['period']}[/]: spent {data['spent']:,.2f}, budget left {data['budget_left']:,.2f}")
    stock = Table(title="Products")
    for col in ("sku", "name", "price", "unit cost", "stock"):
        stock.add_column(col)
    for p in data["products"]:
        stock.add_row(p["sku"], p["name"], f"{p['price']:.2f}", f"{p['unit_cost']:.2f}", str(p["stock"]))
    console.print(stock)
    recent = Table(title="Recent campaigns")
    for col in ("id", "thread", "product", "status", "spend", "created"):
        recent.add_column(col)
    for c in data["campaigns"]:
        recent.add_row(c["id"], c["thread_id"], c["product_sku"], c["status"], f"{c['spend']:,.2f}", c["created_at"])
    console.print(recent)


if __name__ == "__main__":
    main()

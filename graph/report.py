"""The human-readable decision report (rich), from the same dict `--json` prints.

Text that comes from outside (goals, signals, model answers, upstream errors) is escaped: rich
would read "[/]" or "[link=...]" in it as markup, crash on it or print what it says.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table


def render(decision: dict[str, Any], ledger: dict[str, Any] | None = None) -> Group:
    parts: list[Any] = [_header(decision)]
    if decision.get("scout"):
        parts.append(_scout(decision))
    if decision.get("signals"):
        parts.append(_signals(decision["signals"]))
    if decision.get("debate"):
        parts.append(_debate(decision["debate"]))
    if decision.get("verdict"):
        v = decision["verdict"]
        parts.append(Panel(f"[bold]{v['action'].upper()}[/] {_money(v['budget'])} {_split(v['channels'])}\n"
                           f"{escape(v['rationale'])}", title="CEO verdict"))
    if decision.get("plan"):
        parts.append(_plan(decision["plan"]))
    if decision.get("copy"):
        parts.append(_copy(decision["copy"]))
    if decision.get("campaign"):
        parts.append(_campaign(decision["campaign"], ledger))
    parts.append(_footer(decision))
    return Group(*parts)


def _header(d: dict[str, Any]) -> Panel:
    colour = {"executed": "green", "rejected": "yellow", "awaiting_approval": "cyan"}.get(d["status"], "red")
    goal = (d.get("brief") or {}).get("goal", "")
    text = f"[bold {colour}]{d['status']}[/]  thread [bold]{d['thread_id']}[/]  provider [bold]{d.get('provider')}[/]"
    if d.get("reason"):
        text += f"\n{escape(d['reason'])}"
    if d["status"] == "awaiting_approval":
        text += f"\nApprove: leadboost approve {d['thread_id']} [--budget N]   Reject: leadboost reject " \
                f"{d['thread_id']} --reason TEXT"
    return Panel(text, title=f"LeadBoost RADAR: {escape(goal[:80])}")


def _scout(d: dict[str, Any]) -> Group:
    scout = d["scout"]
    table = Table(title="Scout: sources", title_justify="left")
    table.add_column("source")
    table.add_column("signals", justify="right")
    table.add_column("error")
    for run in scout["sources"]:
        table.add_row(escape(run["name"]), str(run["fetched"]), escape(run["error"] or ""))
    dropped = ", ".join(f"{reason} {len(ids)}" for reason, ids in sorted(scout["dropped"].items())) or "none"
    lines = [f"kept {scout['kept']}; dropped: {dropped}"]
    lines += [f"[yellow]quarantined[/] {escape(q['id'])} ({', '.join(q['patterns'])}): {escape(q['title'][:70])}"
              for q in scout["quarantined"]]
    lines += [f"[yellow]rejected row[/] {escape(row)}" for row in scout.get("rejected_rows", [])]
    return Group(table, *lines)


def _signals(signals: list[dict[str, Any]]) -> Table:
    table = Table(title=f"Signals used (top {min(len(signals), 8)} of {len(signals)})", title_justify="left")
    for col in ("id", "source", "score", "sent.", "title"):
        table.add_column(col)
    for s in signals[:8]:
        table.add_row(escape(s["id"]), escape(s["source"]), f"{s['score']:.2f}", f"{s['sentiment']:+.1f}",
                      escape(s["title"][:70]))
    return table


def _debate(turns: list[dict[str, Any]]) -> Table:
    table = Table(title="Debate", title_justify="left", show_lines=True)
    for col in ("round", "role", "stance", "argument", "cites"):
        table.add_column(col)
    for t in turns:
        table.add_row(str(t["round"]), t["role"].upper(), t["stance"], escape(t["argument"]),
                      escape("\n".join(t["cited_signals"])))
    return table


def _plan(plan: dict[str, Any]) -> Group:
    f = plan["forecast"]
    table = Table(title=f"Plan after policy: {plan['campaign_id']}  {plan['product_sku']}  {_money(plan['budget'])}",
                  title_justify="left")
    for col in ("metric", "p10", "p50", "p90"):
        table.add_column(col, justify="right")
    for metric in ("units", "revenue", "margin", "roi"):
        q = f[metric]
        fmt = (lambda x: f"{x:+.2f}") if metric == "roi" else (lambda x: f"{x:,.0f}")
        table.add_row(metric, fmt(q["p10"]), fmt(q["p50"]), fmt(q["p90"]))
    lines = [f"{f['draws']:,} draws, seed {f['seed']}; split {_split(plan['channels'])}"]
    lines += [f"[yellow]policy:[/] {a}" for a in plan["adjustments"]] or ["policy: no adjustment needed"]
    return Group(table, *lines)


def _copy(copies: list[dict[str, Any]]) -> Table:
    table = Table(title="Copy", title_justify="left", show_lines=True)
    for col in ("channel", "headline", "body", "call to action"):
        table.add_column(col)
    for c in copies:
        table.add_row(c["channel"], escape(c["headline"]), escape(c["body"]), escape(c["call_to_action"]))
    return table


def _campaign(campaign: dict[str, Any], ledger: dict[str, Any] | None) -> Group:
    table = Table(title=f"Executed: {campaign['id']} ({campaign['status']})", title_justify="left")
    for col in ("channel", "amount", "receipt", "status"):
        table.add_column(col)
    for e in campaign["executions"]:
        table.add_row(e["channel"], _money(e["amount"]), escape(e["receipt_id"]), e["status"])
    if not ledger:
        return Group(table)
    return Group(table, f"ledger {ledger['period']}: spent {_money(ledger['spent'])}, "
                        f"budget left {_money(ledger['budget_left'])}")


def _footer(d: dict[str, Any]) -> str:
    u = d["usage"]
    lines = [f"LLM calls {u['calls']}, tokens {u['tokens']:,}, estimated cost ${u['cost_usd']:.4f} "
             f"(provider {d.get('provider')})"]
    lines += [f"  {k}: {v['calls']} calls, {v['input_tokens']}+{v['output_tokens']} tokens, "
              + (f"${v['cost_usd']:.4f}" if v["cost_usd"] is not None else "no price")
              for k, v in sorted(u["by_role_model"].items())]
    if d.get("source_errors"):
        lines += [f"source error {escape(e['source'])} ({e['kind']}): {escape(e['message'])}"
                  for e in d["source_errors"]]
    return "\n".join(lines)


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def _split(channels: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:,.0f}" for k, v in sorted(channels.items())) or "-"


def print_report(decision: dict[str, Any], ledger: dict[str, Any] | None = None, console: Console | None = None):
    (console or Console()).print(render(decision, ledger))

"""The daily LangGraph: one invocation per trading day for the whole universe.

    context ─┬─► analyst ───┐
             ├─► sentiment ─┼─► risk ─► decision ─► guard ─► broker ─► record
             ├─► quant ─────┘    │         │          │                  ▲
             └─► hold ◄──────────┴─────────┴──────────┘ (no orders) ─────┘

Routers return ``Literal`` names so the topology is explicit and snapshot-tested. Any node that raises
ends the day in hold-all with ``fallback:<node>_error``: the graph never lets an exception reach the
broker, and the guard is the only way to the broker (``ApprovedOrder`` is built by the guard alone).
"""

from __future__ import annotations

import contextvars
import functools
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Literal, cast

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from agent import nodes
from agent.state import DayDeps, DayState
from portfolio import outbox
from portfolio.holdall import hold_all
from portfolio.storage import reraise_interrupt

NodeFn = Callable[[DayState, DayDeps], DayState]


def _safe(name: str, fn: NodeFn) -> Callable[[DayState, RunnableConfig], dict[str, Any]]:
    """Time the node; turn an exception into an abstention (signal nodes) or hold-all (the rest).

    The day's dependencies arrive in ``config["configurable"]["deps"]``, so one compiled graph serves every
    day (a replay compiles it once, not once per session).
    """

    def run(state: DayState, config: RunnableConfig) -> dict[str, Any]:
        started = time.perf_counter()
        deps: DayDeps = config["configurable"]["deps"]
        update: dict[str, Any]
        try:
            update = dict(fn(state, deps))
        except Exception as exc:  # fail closed, whatever went wrong
            reraise_interrupt(exc)
            if name in nodes.SIGNAL_NODES:
                update = {"nodes": {name: nodes.abstention(name, deps, f"error:{type(exc).__name__}")}}
            else:
                update = {"hold": hold_all(f"{name}_error", f"{type(exc).__name__} in node {name}").model_dump()}
        update["timings"] = {name: round(time.perf_counter() - started, 4)}
        return update

    # not functools.wraps: LangGraph reads the signature, and this one takes ``config``
    run.__name__ = run.__qualname__ = name
    return run


def _after_context(state: DayState) -> list[Literal["analyst", "sentiment", "quant"]] | Literal["hold"]:
    if state.get("hold"):
        return "hold"
    return ["analyst", "sentiment", "quant"]


def _after_risk(state: DayState) -> Literal["decision", "hold"]:
    return "hold" if state.get("hold") else "decision"


def _after_decision(state: DayState) -> Literal["guard", "record"]:
    return "record" if state.get("hold") else "guard"


def _after_guard(state: DayState) -> Literal["broker", "record"]:
    result = state.get("guard")
    if state.get("hold") or not state.get("can_place") or result is None or not result.approved:
        return "record"
    return "broker"


def _record(state: DayState, deps: DayDeps) -> DayState:
    """Log the guard's rejections and clamps of a day that placed nothing; a dry run writes nothing.

    When orders were placed, the broker node already logged them in the orders' own transaction, so a crash
    between the two can never leave orders without the verdicts that came with them.
    """
    result = state.get("guard")
    if result is not None and deps.broker is not None and "placed" not in state:
        with deps.ledger.transaction() as con:  # the verdicts' alert commits with them
            deps.ledger.record_guard(deps.run_date, result)
            outbox.enqueue_guard(con, deps.run_date, deps.universe.name, result, [])
    return {}


def _late(attr: str) -> NodeFn:
    def call(state: DayState, deps: DayDeps) -> DayState:
        fn: NodeFn = getattr(nodes, attr)
        return fn(state, deps)

    return call


@functools.cache
def _compiled() -> Any:
    graph: StateGraph[Any] = StateGraph(DayState)
    # Looked up by name on every call (not bound at compile time): the graph is compiled once per process.
    steps: dict[str, NodeFn] = {name: _late(f"{name}_node") for name in
                                ("context", "analyst", "sentiment", "quant", "risk", "decision", "guard", "broker", "hold")}
    steps["record"] = lambda state, deps: globals()["_record"](state, deps)
    for name, fn in steps.items():
        graph.add_node(name, cast(Any, _safe(name, fn)))
    graph.add_edge(START, "context")
    graph.add_conditional_edges("context", _after_context, ["analyst", "sentiment", "quant", "hold"])
    graph.add_edge(["analyst", "sentiment", "quant"], "risk")
    graph.add_conditional_edges("risk", _after_risk)
    graph.add_conditional_edges("decision", _after_decision)
    graph.add_conditional_edges("guard", _after_guard)
    graph.add_edge("broker", "record")
    graph.add_edge("hold", "record")
    graph.add_edge("record", END)
    return graph.compile()


# LangGraph runs the nodes of one superstep (analyst, sentiment, quant) in a thread pool it makes per invocation.
# A real LLM needs that (three network calls at once); the offline rules make no call, and there the pool's
# thread starts and hand-offs cost more than the three nodes (~3 ms a replayed day, far more on a busy machine).
# So with a client that does no I/O the superstep's tasks run inline, one after the other, through the runner's
# own submit hook (the config key LangGraph uses to hand a subgraph its parent's runner). The state is the same:
# LangGraph applies a superstep's writes in task order, never in completion order.
RUNNER_SUBMIT = "__pregel_runner_submit"  # langgraph._internal._constants.CONFIG_KEY_RUNNER_SUBMIT (a test checks)
INLINE_PROVIDERS = frozenset({"offline-rules"})  # clients that make no network call


def _inline_submit(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
    """``BackgroundExecutor.submit`` without the thread: run now, in a copy of the context, as a done future."""
    for flag in ("__name__", "__cancel_on_exit__", "__reraise_on_exit__", "__next_tick__"):
        kwargs.pop(flag, None)
    future: Future[Any] = Future()
    try:
        future.set_result(contextvars.copy_context().run(fn, *args, **kwargs))
    except BaseException as exc:  # as a pool's worker does: the runner re-raises it from the future
        future.set_exception(exc)
    return future


def _inline_runner() -> Callable[..., Future[Any]]:
    return _inline_submit  # the runner calls the hook for its submit function (a WeakMethod's interface)


def run_day_graph(deps: DayDeps) -> dict[str, Any]:
    """Invoke the (once-compiled) graph for one day with ``deps``; returns the final state."""
    configurable: dict[str, Any] = {"deps": deps}
    if getattr(deps.client, "provider", None) in INLINE_PROVIDERS:
        configurable[RUNNER_SUBMIT] = _inline_runner
    return dict(_compiled().invoke({"nodes": {}, "timings": {}}, config={"configurable": configurable}))


def topology() -> str:
    """Mermaid text of the graph, for the snapshot test and the README. Nodes are built, never run."""
    return str(_compiled().get_graph().draw_mermaid())

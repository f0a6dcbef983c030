"""The Gradio Blocks app of ``tradeagent chat``: a chat tab and dashboard tabs, all read-only.

Contract:
- ``build_app(home, responder)`` returns the ``gr.Blocks``: tabs Chat, Equity, Positions, Trades, Last day
  (with a picker of every day that has a results file), Guard log, Alerts, Evals. Each dashboard tab is
  filled by its ``agent.chat.views`` function when it is selected (and again each time), so it always shows
  the home as it is now.
- The chat's answers come from ``responder(question) -> markdown`` (the offline router or the LLM chat);
  the same function is the API endpoint ``/ask`` (``gradio_client``: ``client.predict(question,
  api_name="/ask")``). A responder that raises is answered with one line, never a traceback.
- ``launch(app, host, port, auth, allowed)`` serves it: ``share=False``, analytics off, the eval reports'
  folder the only extra path it serves, ``auth`` as Gradio's login when given. Host policy (loopback unless
  ``--auth``) is the CLI's (``agent.cli_chat``); an IPv6 host is given bracketed (``[::1]``).
- Uploads are refused: no component takes a file, so ``POST /gradio_api/upload`` answers 403 before Gradio's
  handler runs (nothing is written under the temp folder), from any origin; ``max_file_size`` is 1 byte
  as a second fence.
- ``/ask`` returns the same markdown the chat shows: recorded text escaped (``agent.chat.text.esc``), so a
  client may render it safely; ``agent.chat.text.plain`` turns it back into the text as recorded.

Deliberate decisions:
- No component is editable by the user except the question box: tables are ``interactive=False``; the
  chatbot renders markdown with HTML sanitised and LaTeX off, and answers escape recorded text themselves.
- Analytics and Gradio's version check are off (``analytics_enabled=False``): the app makes no network call.
- The default theme uses fonts shipped inside Gradio, so the page loads with no network (no Google Fonts).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no telemetry thread

import gradio as gr
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from agent.chat import views
from agent.chat.reader import Home
from agent.chat.text import code, esc

Responder = Callable[[str], str]
TITLE = "tradeagent"
EXAMPLES = ["why did you buy GOOG on 2013-02-28?", "what is my P&L this month?",
            "which orders did the guard reject last week?", "what do I hold?", "risk status"]
TABS = ("Chat", "Equity", "Positions", "Trades", "Last day", "Guard log", "Alerts", "Evals")


def _safe(responder: Responder) -> Responder:
    def ask(question: str) -> str:
        question = str(question or "").strip()
        if not question:
            return "Ask a question about the book, e.g. " + esc(EXAMPLES[1])
        try:
            return responder(question)
        except Exception as exc:  # the chat never shows a traceback; the line says what failed
            if os.environ.get("TRADEAGENT_DEBUG"):
                raise
            return f"I could not answer: {esc(type(exc).__name__)}: {esc(' '.join(str(exc).split()), 300)}"

    return ask


def build_app(home: Home, responder: Responder, mode_line: str) -> gr.Blocks:
    """The Blocks app over ``home`` (see the module doc); ``mode_line`` says offline or which LLM answers."""
    ask = _safe(responder)

    def chat_turn(question: str, history: list[dict[str, Any]] | None) -> tuple[list[dict[str, Any]], str]:
        reply = ask(question)
        # the user's own text is shown escaped too: it is echoed into markdown
        return [*(history or []), {"role": "user", "content": esc(question, 2000)},
                {"role": "assistant", "content": reply}], ""

    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        gr.Markdown(f"## tradeagent · read-only chat and dashboard\n{esc(mode_line)} · home {code(home.settings.home)}")
        with gr.Tabs(overflow_behavior="wrap"):
            with gr.Tab("Chat", id="chat"):
                chatbot = gr.Chatbot(label="ask the book", height=460, sanitize_html=True, render_markdown=True,
                                     latex_delimiters=[], feedback_options=None, elem_id="chatbot", buttons=["copy", "copy_all"],
                                     placeholder="Ask about a day's decision, your P&L, the guard, positions, trades, "
                                                 "risk or evals.")
                with gr.Row():
                    box = gr.Textbox(placeholder=EXAMPLES[0], show_label=False, scale=5, elem_id="question")
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                gr.Examples(EXAMPLES, inputs=box)
                box.submit(chat_turn, [box, chatbot], [chatbot, box], api_visibility="private")
                send.click(chat_turn, [box, chatbot], [chatbot, box], api_visibility="private")
            with gr.Tab("Equity", id="equity") as t_equity:
                eq_status = gr.Markdown(elem_id="status-equity")
                eq_plot = gr.Plot(label="equity and drawdown")
            with gr.Tab("Positions", id="positions") as t_positions:
                pos_status = gr.Markdown(elem_id="status-positions")
                pos_table = gr.Dataframe(label="positions", interactive=False, wrap=True)
                pend_table = gr.Dataframe(label="pending orders", interactive=False, wrap=True)
            with gr.Tab("Trades", id="trades") as t_trades:
                tr_status = gr.Markdown(elem_id="status-trades")
                orders_table = gr.Dataframe(label="orders", interactive=False, wrap=True)
                fills_table = gr.Dataframe(label="fills", interactive=False, wrap=True)
            with gr.Tab("Last day", id="day") as t_day:
                day_pick = gr.Dropdown(label="day (newest first)", choices=[], interactive=True, elem_id="day-pick")
                day_status = gr.Markdown(elem_id="status-day")
                nodes_table = gr.Dataframe(label="each node's scores and rationale", interactive=False, wrap=True)
                day_orders = gr.Dataframe(label="orders through the guard", interactive=False, wrap=True)
            with gr.Tab("Guard log", id="guard") as t_guard:
                guard_status = gr.Markdown(elem_id="status-guard")
                guard_table = gr.Dataframe(label="rejections and clamps", interactive=False, wrap=True)
            with gr.Tab("Alerts", id="alerts") as t_alerts:
                alerts_status = gr.Markdown(elem_id="status-alerts")
                alerts_table = gr.Dataframe(label="alerts", interactive=False, wrap=True)
            with gr.Tab("Evals", id="evals") as t_evals:
                evals_status = gr.Markdown(elem_id="status-evals")
                evals_table = gr.Dataframe(label="metrics per policy", interactive=False, wrap=True)

        def bind(tab: gr.Tab, view: Callable[[Home], tuple[Any, ...]], outputs: list[Any]) -> None:
            tab.select(lambda: view(home), None, outputs, api_visibility="private")

        bind(t_equity, views.equity_tab, [eq_status, eq_plot])
        bind(t_positions, views.positions_tab, [pos_status, pos_table, pend_table])
        bind(t_trades, views.trades_tab, [tr_status, orders_table, fills_table])
        def last_day() -> tuple[Any, ...]:
            days = [d.isoformat() for d in reversed(home.days())]
            return (gr.update(choices=days, value=days[0] if days else None), *views.day_tab(home))

        t_day.select(last_day, None, [day_pick, day_status, nodes_table, day_orders], api_visibility="private")
        day_pick.input(lambda day: views.day_tab(home, day), day_pick, [day_status, nodes_table, day_orders],
                       api_visibility="private")
        bind(t_guard, views.guard_tab, [guard_status, guard_table])
        bind(t_alerts, views.alerts_tab, [alerts_status, alerts_table])
        bind(t_evals, views.evals_tab, [evals_status, evals_table])

        def ask_api(question: str) -> str:
            """Answer one question about the book (read-only): the chat's markdown, recorded text escaped."""
            return ask(question)

        gr.api(ask_api, api_name="ask")
    return app


def launch(app: gr.Blocks, host: str, port: int, auth: tuple[str, str] | None, allowed: list[Path],
           *, block: bool = True) -> None:
    """Serve ``app`` on ``host:port`` (never shared); ``block=False`` returns once it listens (tests)."""
    app.queue(default_concurrency_limit=4)
    app.launch(server_name=host, server_port=port, share=False, auth=auth, inbrowser=False, show_error=False,
               quiet=True, allowed_paths=[str(p) for p in allowed], prevent_thread_lock=True,
               footer_links=[], run_history=False, enable_monitoring=False, mcp_server=False, ssr_mode=False,
               max_file_size=MAX_UPLOAD_BYTES)
    # routes are matched in order at each request: this one answers before Gradio's own upload handler
    app.server_app.router.routes.insert(0, Route("/gradio_api/upload", _refuse_upload, methods=["POST"]))
    if block:
        app.block_thread()


MAX_UPLOAD_BYTES = 1


async def _refuse_upload(request: Request) -> Response:
    return PlainTextResponse("uploads are not accepted: this app is read-only", status_code=403)

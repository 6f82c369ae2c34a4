"""The dashboard's step log (static/app.js `takeSteps`), run by Node.js: two polls of one
operation's steps may ask with the same `after` (a navigation starts a new poll loop while the old
one still waits for its answer, and both share the operation's record). Only the first answer is
taken: taking both drew a step twice on the timeline (two `MarkRunning` bars, one of them on the
critical path)."""

from __future__ import annotations

import json
from typing import Any

from tests.dashboard_script import app_source, run_printing_json


def _run(script: str) -> Any:
    return run_printing_json(app_source("const TERMINAL", "function takeSteps(record, after, answer)") + script)


def _answer(first: int, last: int, status: str = "RUNNING") -> dict:
    items = [{"index": i, "type": "done", "step": f"S{i}"} for i in range(first, last + 1)]
    return {"items": items, "next": last, "status": status, "historyEnded": status != "RUNNING"}


def test_two_answers_to_the_same_poll_add_its_steps_once() -> None:
    script = f"""
const record = {{ items: [], next: 0, final: false }};
const first = {json.dumps(_answer(1, 3))};
const taken = [takeSteps(record, 0, first), takeSteps(record, 0, structuredClone(first))];
const later = takeSteps(record, record.next, {json.dumps(_answer(4, 5, "SUCCEEDED"))});
const indexes = record.items.map((i) => i.index);
console.log(JSON.stringify({{ taken, later, indexes, next: record.next, final: record.final }}));
"""
    result = _run(script)
    assert result["taken"] == [True, False]
    assert result["later"] is True
    assert result["indexes"] == [1, 2, 3, 4, 5]
    assert result["next"] == 5 and result["final"] is True


def test_an_answer_that_ends_the_operation_before_its_history_keeps_polling() -> None:
    answer = _answer(1, 2, "SUCCEEDED") | {"historyEnded": False}
    script = f"""
const record = {{ items: [], next: 0, final: false }};
takeSteps(record, 0, {json.dumps(answer)});
console.log(JSON.stringify({{ final: record.final, status: record.status }}));
"""
    assert _run(script) == {"final": False, "status": "SUCCEEDED"}


def test_a_navigation_draws_the_steps_an_old_poll_took_into_the_new_page() -> None:
    """The old page's poll is still waiting when the user opens the operation: its answer lands
    in the shared record first and is drawn into the old (detached) log; the new page's log must
    still show every step (it showed none: what was drawn was counted on the record)."""
    script = f"""
const state = {{ steps: new Map() }};
const waiting = [];
const api = () => new Promise((resolve) => waiting.push(resolve));
const update = () => {{}};
const stepLogItem = (item) => item.index;
function page() {{
  const log = {{ dataset: {{}}, items: [],
    get childElementCount() {{ return this.items.length; }},
    append(...items) {{ this.items.push(...items); }},
    replaceChildren() {{ this.items = []; }} }};
  return {{ log, count: {{}}, iterations: {{}}, timeline: {{}} }};
}}
(async () => {{
  const operation = {{ id: "create-1", status: "RUNNING" }};
  const oldPage = page(), newPage = page();
  const oldPoll = refreshSteps("default", operation, oldPage);
  const newPoll = refreshSteps("default", operation, newPage);
  waiting[0]({json.dumps(_answer(1, 3, "SUCCEEDED") | {"historyEnded": True})});
  await oldPoll;
  waiting[1]({json.dumps(_answer(1, 3, "SUCCEEDED") | {"historyEnded": True})});
  await newPoll;
  await refreshSteps("default", operation, newPage);  // the next poll: the record is final
  console.log(JSON.stringify({{ old: oldPage.log.items, shown: newPage.log.items }}));
}})();
"""
    source = app_source(
        "const TERMINAL",
        "function takeSteps(record, after, answer)",
        "async function refreshSteps(target, operation, elements)",
    )
    result = run_printing_json(source + script)
    assert result["old"] == [1, 2, 3]
    assert result["shown"] == [1, 2, 3]

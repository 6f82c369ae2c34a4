"""EventBridge: scheduled rules kept out of event matching, as on AWS; rules read as plain
data (``RuleInfo``, with moto's own pattern matcher); input transformers applied by moto's
implementation."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from kubestep_local.moto_compat.core import PatchSet, iter_backends


def scheduled_rules_match_no_events(patches: PatchSet) -> None:
    """PutEvents offers every event to every rule of the bus; moto lets a scheduled rule (no
    event pattern) match them all and then raises on its Step Functions or Lambda target, so no
    rule after it gets the event. On AWS a scheduled rule never matches an event (EventBridge
    user guide, "Creating rules that run on a schedule"). Targets moto cannot deliver (Lambda,
    Step Functions) are the EventBridge stand-in's (kubestep_local.events)."""
    from moto.events.models import Rule

    original_send = Rule.send_to_targets

    def send_to_targets(self: Any, event: Any, transform_input: bool = True) -> None:
        if self.scheduled_expression and not self.event_pattern.get_pattern():
            return
        deliverable = [t for t in self.targets if t["Arn"].split(":")[2] not in ("lambda", "states")]
        if len(deliverable) != len(self.targets):
            # A copy, so the rule the stand-in reads keeps all its targets.
            view = copy.copy(self)
            view.targets = deliverable
            original_send(view, event, transform_input)
            return
        original_send(self, event, transform_input)

    patches.set(Rule, "send_to_targets", send_to_targets)


@dataclass(frozen=True)
class RuleInfo:
    """An EventBridge rule with its targets and (for event rules) its pattern matcher."""

    name: str
    arn: str
    account: str
    region: str
    bus: str
    state: str
    schedule_expression: str | None
    targets: list[dict[str, Any]]
    _pattern: Any = field(repr=False, compare=False)

    def matches(self, event: dict[str, Any]) -> bool:
        """moto's own EventBridge pattern matcher."""
        return bool(self._pattern.matches_event(event))


def event_rules(account: str | None = None, region: str | None = None, bus: str | None = None) -> list[RuleInfo]:
    from moto.events.models import events_backends

    rules = []
    for acc, reg, backend in iter_backends(events_backends):
        if (account is not None and acc != account) or (region is not None and reg != region):
            continue
        for bus_name, event_bus in list(backend.event_buses.items()):
            if bus is not None and bus_name != bus:
                continue
            for rule in list(event_bus.rules.values()):
                rules.append(
                    RuleInfo(
                        name=rule.name,
                        arn=rule.arn,
                        account=acc,
                        region=reg,
                        bus=bus_name,
                        state=rule.state,
                        schedule_expression=rule.scheduled_expression,
                        targets=[dict(t) for t in rule.targets],
                        _pattern=rule.event_pattern,
                    )
                )
    return rules


def render_input_transformer(transformer: dict[str, Any], event: dict[str, Any]) -> Any:
    """A target's InputTransformer applied to an event, by moto's EventBridge implementation."""
    from moto.events.utils import EventTemplateParser

    return EventTemplateParser.parse(
        input_template=transformer.get("InputTemplate"),
        input_paths_map=transformer.get("InputPathsMap", {}),
        event=event,
    )

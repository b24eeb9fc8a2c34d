"""A view is an allow-list at every depth: build_view refuses an alert that holds a key its type's schema lacks,
or another type's payload, instead of copying it through.

The codec never decodes such an alert, but a dict built elsewhere might hold anything; before this check a key
the schema lacks, or a SEIZURE payload under a BORDER_EVENT alert, reached the view as it came.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from types import MappingProxyType
from typing import Any

import pytest

from policies import PolicySet, build_view, decide
from puente.errors import PolicyError

SECRET = "Informante Alto Limón"


def _spoilt(make_alert: Callable[..., dict[str, Any]], name: str, spoil: Callable[[dict[str, Any]], Any]
            ) -> dict[str, Any]:
    alert = copy.deepcopy(make_alert(name))
    spoil(alert)
    return alert


@pytest.mark.parametrize(
    ("name", "partner", "spoil"),
    [
        ("darien_sighting", "COL", lambda a: a.update(source_name=SECRET)),  # top level
        ("darien_sighting", "COL", lambda a: a["markings"].update(informant=SECRET)),  # kept by the envelope
        ("darien_sighting", "COL", lambda a: a["payload"].update(informant=SECRET)),
        ("darien_sighting", "FEAN", lambda a: a["payload"].update(informant=SECRET)),  # FEAN keeps payload whole
        ("darien_sighting", "COL", lambda a: a["location"].update(informant=SECRET)),
        ("gofast_seizure", "COL", lambda a: a["payload"]["detainees"][0].update(informant=SECRET)),  # array item
        ("tocumen_hit", "USA", lambda a: a["payload"]["person"]["documents"][0].update(informant=SECRET)),
        ("tocumen_hit", "USA", lambda a: a["payload"]["person"].update({1: SECRET})),  # a key that is no name
        ("darien_sighting", "COL", lambda a: a.update(location=SECRET)),  # text where a record belongs
        ("gofast_seizure", "FEAN", lambda a: a["payload"].update(detainees=({"surnames": [SECRET]},))),
        ("gofast_seizure", "FEAN", lambda a: a["payload"].update(detainees=[SECRET])),
    ],
)
def test_a_key_the_schema_lacks_is_refused_at_any_depth(
    policy_set: PolicySet, make_alert: Any, now: datetime, key: bytes, name: str, partner: str,
    spoil: Callable[[dict[str, Any]], Any],
) -> None:
    alert = make_alert(name)
    decision = decide(alert, partner, policy_set, now)
    assert decision.delivers, decision.reasons
    build_view(alert, decision, policy_set, key)  # the alert as decoded has its view
    with pytest.raises(PolicyError, match=r"no view: the alert holds fields the .* schema lacks") as caught:
        build_view(_spoilt(make_alert, name, spoil), decision, policy_set, key)
    assert SECRET not in str(caught.value) and caught.value.__cause__ is None


def test_another_types_payload_is_refused(policy_set: PolicySet, make_alert: Any, now: datetime, key: bytes) -> None:
    """A SEIZURE payload under a BORDER_EVENT alert: the branch alert_type names is the only one allowed."""
    event, seizure = make_alert("darien_sighting"), make_alert("gofast_seizure")
    for partner in ("COL", "FEAN"):
        decision = decide(event, partner, policy_set, now)
        mixed = {**event, "payload": seizure["payload"]}
        with pytest.raises(PolicyError, match="BORDER_EVENT schema lacks"):
            build_view(mixed, decision, policy_set, key)


def test_an_alert_the_schema_allows_still_has_its_view(
    policy_set: PolicySet, make_alert: Any, now: datetime, key: bytes
) -> None:
    """Fewer keys than the schema has: the allow-list holds. Another mapping than a plain dict, at the top or
    below, has no view: its own iteration could show the check other keys than a copy takes."""
    alert = make_alert("darien_sighting")
    decision = decide(alert, "COL", policy_set, now)
    full = build_view(alert, decision, policy_set, key)
    assert build_view(dict(alert), decision, policy_set, key) == full

    class Record(dict[str, Any]):
        pass

    for other in (MappingProxyType(alert), {**alert, "payload": Record(alert["payload"])}):
        with pytest.raises(PolicyError, match="no view"):
            build_view(other, decision, policy_set, key)
    fewer = {k: v for k, v in alert.items() if k != "source_timezone"}
    assert "source_timezone" in full and "source_timezone" not in build_view(fewer, decision, policy_set, key)

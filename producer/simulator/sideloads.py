"""Side-loaded objects (`include=users,groups,organizations,metric_sets`), derived from ids.

Pure and deterministic: the same id always yields the same object, so nothing is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from producer.simulator.generator import AGENT_IDS, iso, user_email, user_name

SUPPORTED = ("users", "groups", "organizations", "metric_sets")
_EPOCH = 1_500_000_000  # when the simulated account "was created"


def user(user_id: int, subdomain: str) -> dict[str, Any]:
    agent = user_id in AGENT_IDS
    return {
        "id": user_id,
        "url": f"https://{subdomain}.zendesk.com/api/v2/users/{user_id}.json",
        "name": user_name(user_id),
        "email": user_email(user_id),
        "created_at": iso(_EPOCH + user_id % 10**7),
        "updated_at": iso(_EPOCH + user_id % 10**7 + 3600),
        "time_zone": "Europe/Paris",
        "iana_time_zone": "Europe/Paris",
        "phone": None,
        "locale_id": 1,
        "locale": "en-US",
        "organization_id": None,
        "role": "agent" if agent else "end-user",
        "verified": True,
        "active": True,
        "suspended": False,
        "tags": [],
        "user_fields": {},
    }


def group(group_id: int, subdomain: str) -> dict[str, Any]:
    return {
        "url": f"https://{subdomain}.zendesk.com/api/v2/groups/{group_id}.json",
        "id": group_id,
        "is_public": True,
        "name": f"Tier {group_id % 10} Support",
        "description": "",
        "default": group_id % 10 == 1,
        "deleted": False,
        "created_at": iso(_EPOCH),
        "updated_at": iso(_EPOCH + 86400),
    }


def organization(org_id: int, subdomain: str) -> dict[str, Any]:
    return {
        "url": f"https://{subdomain}.zendesk.com/api/v2/organizations/{org_id}.json",
        "id": org_id,
        "name": f"Customer {org_id % 1000} GmbH",
        "shared_tickets": False,
        "shared_comments": False,
        "external_id": None,
        "created_at": iso(_EPOCH),
        "updated_at": iso(_EPOCH + 86400),
        "domain_names": [f"customer{org_id % 1000}.example.org"],
        "details": "",
        "notes": "",
        "group_id": None,
        "tags": [],
        "organization_fields": {},
    }


def metric_set(ticket: Mapping[str, Any], subdomain: str) -> dict[str, Any]:
    tid = int(ticket["id"])
    solved = ticket["status"] in ("solved", "closed")
    minutes = {"calendar": tid % 500, "business": tid % 300}
    return {
        "url": f"https://{subdomain}.zendesk.com/api/v2/ticket_metrics/{tid}.json",
        "id": 360_800_000 + tid,
        "ticket_id": tid,
        "created_at": ticket["created_at"],
        "updated_at": ticket["updated_at"],
        "group_stations": tid % 3,
        "assignee_stations": tid % 4,
        "reopens": tid % 2,
        "replies": tid % 7,
        "assignee_updated_at": ticket["updated_at"] if ticket["assignee_id"] else None,
        "requester_updated_at": ticket["created_at"],
        "status_updated_at": ticket["updated_at"],
        "initially_assigned_at": ticket["created_at"] if ticket["assignee_id"] else None,
        "assigned_at": ticket["updated_at"] if ticket["assignee_id"] else None,
        "solved_at": ticket["updated_at"] if solved else None,
        "latest_comment_added_at": ticket["updated_at"],
        "reply_time_in_minutes": minutes,
        "first_resolution_time_in_minutes": minutes
        if solved
        else {"calendar": None, "business": None},
        "full_resolution_time_in_minutes": minutes
        if solved
        else {"calendar": None, "business": None},
        "agent_wait_time_in_minutes": {"calendar": tid % 60, "business": tid % 40},
        "requester_wait_time_in_minutes": {"calendar": tid % 90, "business": tid % 70},
        "on_hold_time_in_minutes": {"calendar": 0, "business": 0},
    }


def sideloads(
    includes: Iterable[str], tickets: Sequence[Mapping[str, Any]], subdomain: str
) -> dict[str, list[dict[str, Any]]]:
    """The extra top-level arrays for `include=...`; unknown names are ignored like Zendesk does."""
    wanted = [name for name in includes if name in SUPPORTED]
    out: dict[str, list[dict[str, Any]]] = {}
    for name in wanted:
        if name == "users":
            ids = _ids(tickets, ("requester_id", "submitter_id", "assignee_id"))
            out["users"] = [user(i, subdomain) for i in ids]
        elif name == "groups":
            out["groups"] = [group(i, subdomain) for i in _ids(tickets, ("group_id",))]
        elif name == "organizations":
            ids = _ids(tickets, ("organization_id",))
            out["organizations"] = [organization(i, subdomain) for i in ids]
        else:
            out["metric_sets"] = [metric_set(t, subdomain) for t in tickets]
    return out


def _ids(tickets: Sequence[Mapping[str, Any]], keys: tuple[str, ...]) -> list[int]:
    seen: dict[int, None] = {}
    for ticket in tickets:
        for key in keys:
            value = ticket.get(key)
            if isinstance(value, int):
                seen[value] = None
    return list(seen)

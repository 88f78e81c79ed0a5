"""Seeded, pure generation of tickets shaped like the real export returns them.

Every field of ZENDESK_API.md §7 appears in the observed key order, with nulls where real
data has them and the free-form parts (via.source, custom field values, satisfaction
ratings) in every shape seen in the wild.
"""

from __future__ import annotations

import random
import time
from typing import Any

AGENT_IDS = tuple(360_000_001 + i for i in range(40))
END_USER_BASE = 361_000_000
END_USERS = 5000
GROUP_IDS = tuple(360_100_001 + i for i in range(8))
ORGANIZATION_IDS = tuple(360_200_001 + i for i in range(30))
BRAND_IDS = (360_300_001, 360_300_002)
TICKET_FORM_IDS = (360_400_001, 360_400_002)
CUSTOM_STATUS_IDS = {
    "new": 360_500_001,
    "open": 360_500_002,
    "pending": 360_500_003,
    "hold": 360_500_004,
    "solved": 360_500_005,
    "closed": 360_500_006,
    "deleted": 360_500_002,
}
# custom field id -> kind; one of every value type seen in real data
CUSTOM_FIELDS = (
    (360_600_001, "text"),
    (360_600_002, "decimal"),
    (360_600_003, "integer"),
    (360_600_004, "checkbox"),
    (360_600_005, "multiselect"),
    (360_600_006, "tagger"),
)
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
TYPES = (None, None, "problem", "incident", "question", "task")
PRIORITIES = (None, None, "urgent", "high", "normal", "low")
TAG_POOL = (
    "billing", "refund", "vip", "bug", "how_to", "outage", "mobile", "web", "api", "sla_breach",
    "churn_risk", "feature_request", "étiquette", "日本語", "escalated",
)  # fmt: skip
SUBJECTS = (
    "Cannot log in after password reset",
    "Invoice #{n} charged twice",
    "App crashes on start 😡",
    "注文がまだ届いていません",
    "طلب استرداد المبلغ",
    "Feature request: dark mode 🌙",
    "Webhook deliveries delayed",
    "Ärger mit der Lieferung – bitte um Rückruf",
    "Export stuck at 99%",
    "שאלה לגבי החשבון שלי",
)
SENTENCES = (
    "Hello team, I have been trying to reach you since Monday about this problem.",
    "The dashboard shows an error whenever I open the reports page from Safari.",
    "こんにちは、先週注文した商品がまだ届いていません。追跡番号を教えてください。",
    "مرحبا، لقد تم خصم المبلغ مرتين من بطاقتي الائتمانية، أرجو المساعدة.",
    "שלום, אני לא מצליח להתחבר לחשבון שלי מאז העדכון האחרון.",
    "Thanks a lot 🙏🏽 — this is urgent for our launch 🚀🚀🚀 next week!",
    "我们的团队无法导出数据，请尽快处理。",
    "Ünïcödé façade naïve coöperate — Zalgo: t̶̡e̸s̷t̴.",
    "Steps to reproduce: 1) open the app 2) tap «Sync» 3) wait → nothing happens.",
    "Our account manager said this would be fixed in the next release, can you confirm?",
    "👩‍💻 Family emoji 👨‍👩‍👧‍👦 and flags 🇯🇵🇧🇷 should survive every encoding.",
    "Attached you will find the logs from yesterday between 10:00 and 12:00 UTC.",
)
FIRST_NAMES = ("Ana", "Björn", "Chloé", "Dmitri", "Emeka", "Fatima", "Guo", "Hiro", "Ines", "Jo")
LAST_NAMES = ("Silva", "Øster", "Dubois", "Ivanov", "Okafor", "Haddad", "Wei", "Sato", "Lopes")


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def user_name(user_id: int) -> str:
    return f"{FIRST_NAMES[user_id % len(FIRST_NAMES)]} {LAST_NAMES[user_id % len(LAST_NAMES)]}"


def user_email(user_id: int) -> str:
    return f"user{user_id}@customer{user_id % 97}.example.org"


class TicketFactory:
    """Builds and edits ticket dicts; all randomness comes from the injected `rng`."""

    def __init__(self, subdomain: str, rng: random.Random) -> None:
        self._subdomain = subdomain
        self._rng = rng

    def ticket(
        self, ticket_id: int, created: int, updated: int, generated: int, *, deleted: bool = False
    ) -> dict[str, Any]:
        rng = self._rng
        channel = rng.choice(
            ("web", "email", "email", "voice", "whatsapp", "api", "native_messaging")
        )
        requester = END_USER_BASE + rng.randrange(END_USERS)
        assignee = rng.choice(AGENT_IDS) if rng.random() < 0.7 else None
        status = "deleted" if deleted else rng.choice(STATUSES)
        subject = rng.choice(SUBJECTS).format(n=ticket_id)
        fields = self._custom_fields()
        return {
            "url": f"https://{self._subdomain}.zendesk.com/api/v2/tickets/{ticket_id}.json",
            "id": ticket_id,
            "external_id": f"ext-{ticket_id}" if rng.random() < 0.1 else None,
            "via": self._via(channel, requester),
            "created_at": iso(created),
            "updated_at": iso(updated),
            "type": rng.choice(TYPES),
            "subject": subject,
            "raw_subject": subject,
            "description": self._description(),
            "priority": rng.choice(PRIORITIES),
            "status": status,
            "recipient": f"support@{self._subdomain}.zendesk.com" if channel == "email" else None,
            "requester_id": requester,
            "submitter_id": requester if rng.random() < 0.8 else rng.choice(AGENT_IDS),
            "assignee_id": assignee,
            "organization_id": rng.choice(ORGANIZATION_IDS) if rng.random() < 0.5 else None,
            "group_id": rng.choice(GROUP_IDS) if assignee is not None else None,
            "collaborator_ids": self._some_users(3),
            "follower_ids": self._some_users(2),
            "email_cc_ids": self._some_users(2),
            "forum_topic_id": None,
            "problem_id": None,
            "has_incidents": False,
            "is_public": rng.random() < 0.95,
            "due_at": None,
            "tags": sorted(rng.sample(TAG_POOL, rng.randrange(0, 5))),
            "custom_fields": fields,
            "satisfaction_rating": self._satisfaction(ticket_id),
            "sharing_agreement_ids": [],
            "custom_status_id": CUSTOM_STATUS_IDS[status],
            "fields": [dict(f) for f in fields],
            "followup_ids": [],
            "ticket_form_id": rng.choice(TICKET_FORM_IDS),
            "brand_id": rng.choice(BRAND_IDS),
            "allow_channelback": channel in ("whatsapp", "native_messaging"),
            "allow_attachments": True,
            "from_messaging_channel": channel in ("whatsapp", "native_messaging"),
            "generated_timestamp": generated,
        }

    def edit(self, ticket: dict[str, Any], now: int) -> dict[str, Any]:
        """An agent update: content changes, `updated_at` and `generated_timestamp` move."""
        rng = self._rng
        new = dict(ticket)
        kind = rng.randrange(5)
        if kind == 0:
            choices = [s for s in STATUSES if s != ticket["status"]]
            new["status"] = rng.choice(choices)
            new["custom_status_id"] = CUSTOM_STATUS_IDS[new["status"]]
        elif kind == 1:
            new["priority"] = rng.choice([p for p in PRIORITIES if p != ticket["priority"]])
        elif kind == 2:
            new["assignee_id"] = rng.choice([a for a in AGENT_IDS if a != ticket["assignee_id"]])
            new["group_id"] = rng.choice(GROUP_IDS)
        elif kind == 3:
            tags = set(ticket["tags"])
            tags ^= {rng.choice(TAG_POOL)}
            new["tags"] = sorted(tags)
        else:
            new["custom_fields"] = self._custom_fields()
            new["fields"] = [dict(f) for f in new["custom_fields"]]
        if _content(new) == _content(ticket):
            # the random edit happened to be a no-op: make it real
            new["tags"] = [*ticket["tags"], f"edit_{now}_{rng.randrange(1 << 30)}"]
        new["updated_at"] = iso(now)
        new["generated_timestamp"] = now
        return new

    def _via(self, channel: str, requester: int) -> dict[str, Any]:
        name = user_name(requester)
        if channel == "email":
            source: dict[str, Any] = {
                "from": {"address": user_email(requester), "name": name},
                "to": {
                    "name": "Example Support",
                    "address": f"support@{self._subdomain}.zendesk.com",
                },
                "rel": None,
            }
        elif channel == "voice":
            phone = f"+1415555{requester % 10000:04d}"
            source = {
                "from": {
                    "formatted_phone": f"+1 (415) 555-{phone[-4:]}",
                    "phone": phone,
                    "name": name,
                },
                "to": {
                    "formatted_phone": "+1 (800) 555-0199",
                    "phone": "+18005550199",
                    "name": "Support line",
                },
                "rel": "inbound",
            }
        elif channel == "whatsapp":
            source = {
                "from": {
                    "name": name,
                    "whatsapp_id": f"+4915{requester % 10**8:08d}",
                    "profile_url": None,
                },
                "to": {"name": "Example on WhatsApp", "brand_id": BRAND_IDS[0]},
                "rel": None,
            }
        elif channel == "native_messaging":
            source = {
                "from": {
                    "name": name,
                    "conversation_id": f"{requester:x}{self._rng.randrange(1 << 32):08x}",
                },
                "to": {},
                "rel": None,
            }
        else:
            source = {"from": {}, "to": {}, "rel": None}
        return {"channel": channel, "source": source}

    def _description(self) -> str:
        rng = self._rng
        return " ".join(rng.choices(SENTENCES, k=rng.randrange(2, 30)))

    def _some_users(self, at_most: int) -> list[int]:
        rng = self._rng
        return [END_USER_BASE + rng.randrange(END_USERS) for _ in range(rng.randrange(at_most + 1))]

    def _custom_fields(self) -> list[dict[str, Any]]:
        rng = self._rng
        out: list[dict[str, Any]] = []
        for field_id, kind in CUSTOM_FIELDS:
            value: Any
            if rng.random() < 0.25:
                value = None
            elif kind == "text":
                value = rng.choice(("ORD-1234", "café ☕", "", "multi\nline"))
            elif kind == "decimal":
                value = round(rng.uniform(0, 1000), 2)
            elif kind == "integer":
                value = rng.randrange(-5, 10_000)
            elif kind == "checkbox":
                value = rng.random() < 0.5
            elif kind == "multiselect":
                value = rng.sample(
                    ("plan_free", "plan_pro", "plan_ent", "region_eu", "region_us"), 2
                )
            else:
                value = rng.choice(("tier_1", "tier_2", "tier_3"))
            out.append({"id": field_id, "value": value})
        return out

    def _satisfaction(self, ticket_id: int) -> dict[str, Any] | None:
        rng = self._rng
        roll = rng.randrange(5)
        if roll == 0:
            return None
        if roll == 1:
            return {"score": "offered"}
        if roll == 2:
            return {"score": "unoffered"}
        score = "good" if roll == 3 else "bad"
        return {
            "url": f"https://{self._subdomain}.zendesk.com/api/v2/satisfaction_ratings/{ticket_id}.json",
            "id": 360_700_000 + ticket_id,
            "score": score,
            "comment": "Merci beaucoup ! 👍" if score == "good" else None,
            "reason": "No reason provided" if score == "bad" else None,
            "reason_id": 0 if score == "bad" else None,
        }


def _content(ticket: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ticket.items() if k not in ("generated_timestamp", "updated_at")}

"""Seeded generator of realistic customer comments, written as JSONL ready for ``POST /v1/comments``.

Comments are drawn from hand-written templates for every topic of the default taxonomy, in three tones
(negative, neutral, positive), with slots for products, order numbers, amounts and days. Volume follows a
weekly seasonality (busy Mondays, quiet weekends) and a daily cycle; NPS is consistent with the tone. An
optional incident injects a burst of one complaint in one region on one day (by default: tax charged on the
full price instead of the sale price, in ``eu-west``), which the alerting feature should find.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

PRODUCTS = [
    "Zephyr X200 headphones", "AquaPure water filter", "Nimbus 3 backpack", "TerraBrew coffee maker",
    "Lumen desk lamp", "Orbit smart watch", "Kestrel running shoes", "Pico M4 tablet", "Atlas office chair",
    "Breeze air purifier",
]  # fmt: skip
REGIONS = {"eu-west": 0.26, "eu-north": 0.09, "us-east": 0.24, "us-west": 0.17, "apac": 0.15, "latam": 0.09}
SOURCES = {"survey": 0.4, "chat": 0.2, "email": 0.15, "review": 0.15, "social": 0.1}
WEEKDAY_WEIGHT = [1.2, 1.1, 1.0, 1.0, 0.95, 0.7, 0.6]  # Monday first
HOUR_WEIGHT = [0.2, 0.1, 0.1, 0.1, 0.15, 0.3, 0.6, 1.0, 1.4, 1.7, 1.8, 1.7, 1.6, 1.6, 1.5, 1.5, 1.5, 1.6,
               1.7, 1.8, 1.6, 1.2, 0.8, 0.4]  # fmt: skip
TONE_WEIGHT = {"negative": 0.45, "neutral": 0.2, "positive": 0.35}

# topic id -> (touchpoints, {tone: templates})
TEMPLATES: dict[str, tuple[list[str], dict[str, list[str]]]] = {
    "delivery_shipping": (
        ["delivery"],
        {
            "negative": [
                "My order {order} arrived {days} days late and nobody told me why.",
                "The parcel was left in the rain and the {product} box was soaked.",
                "Tracking for {order} has said 'out for delivery' for three days.",
                "The courier delivered my {product} to the wrong address.",
                "Shipping cost {amount} and it still took over a week.",
            ],
            "neutral": [
                "Delivery of {order} took {days} days, about what the site said.",
                "Is there a way to change the delivery slot for {order}?",
            ],
            "positive": [
                "Next day delivery actually came the next day, great job.",
                "The {product} arrived early and very well packed.",
                "Tracking was accurate and the driver was friendly.",
            ],
        },
    ),
    "pricing_promotions": (
        ["checkout", "store"],
        {
            "negative": [
                "The promo code was not applied to my {product} at checkout.",
                "The shelf price and the till price for the {product} were different.",
                "Prices went up again, the {product} now costs {amount}.",
                "The buy one get one free offer did not work online.",
                "My loyalty points were not added for order {order}.",
            ],
            "neutral": [
                "Does the spring sale also apply to the {product}?",
                "I compared prices and yours are about the same as elsewhere.",
            ],
            "positive": [
                "Great value for money, the {product} was on sale for {amount}.",
                "The discount code worked first time, thanks!",
            ],
        },
    ),
    "billing_payments": (
        ["billing"],
        {
            "negative": [
                "I was charged twice for order {order}.",
                "My card was declined even though it works everywhere else.",
                "The invoice for {order} shows {amount} but I agreed to less.",
                "You took a payment of {amount} after I cancelled.",
            ],
            "neutral": [
                "Can I get a VAT invoice for order {order}?",
                "Which payment methods do you accept for orders over {amount}?",
            ],
            "positive": [
                "Paying with my phone was quick and the invoice came right away.",
                "Billing was clear and there were no surprises.",
            ],
        },
    ),
    "refunds_returns": (
        ["returns"],
        {
            "negative": [
                "Still waiting for my refund of {amount}, it has been {days} days.",
                "You refused to accept the return of my {product}.",
                "The return label for {order} never arrived.",
            ],
            "neutral": [
                "How long does a refund usually take after you receive the return?",
                "I sent the {product} back today, order {order}.",
            ],
            "positive": [
                "Returning the {product} was really easy and the refund came in two days.",
                "The exchange was quick and painless.",
            ],
        },
    ),
    "customer_support": (
        ["contact_center"],
        {
            "negative": [
                "I have emailed support three times about {order} and nobody answers.",
                "I waited {days}0 minutes on hold and then the line dropped.",
                "The chat bot kept sending me in circles.",
            ],
            "neutral": [
                "Support asked me to send a photo of the {product}, done.",
                "I opened a ticket about {order}, waiting for news.",
            ],
            "positive": [
                "The support agent solved my problem in five minutes, thank you!",
                "Great support, they replaced the {product} right away.",
            ],
        },
    ),
    "staff_service": (
        ["store"],
        {
            "negative": [
                "The staff at the store were rude and ignored me.",
                "Nobody in the shop could tell me anything about the {product}.",
            ],
            "neutral": ["The store assistant checked the stock of the {product} for me."],
            "positive": [
                "The assistant in store was friendly and really knew the {product}.",
                "Lovely staff, they went out of their way to help.",
            ],
        },
    ),
    "product_quality": (
        ["product"],
        {
            "negative": [
                "The {product} broke after two weeks.",
                "The {product} feels cheap and the strap already cracked.",
                "My {product} stopped charging after a month.",
            ],
            "neutral": ["The {product} does the job, nothing special."],
            "positive": [
                "The {product} is excellent quality, I love it.",
                "Best {product} I have owned, solid and well made.",
            ],
        },
    ),
    "app_website": (
        ["app", "website"],
        {
            "negative": [
                "The app crashes every time I open my basket.",
                "The website is so slow that checkout timed out twice.",
                "The search on the website never finds the {product}.",
            ],
            "neutral": ["The new app update moved the orders page."],
            "positive": [
                "The new app is fast and easy to use.",
                "Love the website redesign, finding the {product} was easy.",
            ],
        },
    ),
    "account_login": (
        ["app", "website"],
        {
            "negative": [
                "I can't log in, the password reset email never comes.",
                "My account was locked for no reason.",
                "Two-factor codes arrive after they expire.",
            ],
            "neutral": ["How do I change the email address on my account?"],
            "positive": ["Logging in with my phone is quick and simple now."],
        },
    ),
    "store_checkout": (
        ["checkout", "store"],
        {
            "negative": [
                "The queue at the checkout was 30 minutes long with one till open.",
                "The self-checkout kept freezing when I scanned the {product}.",
            ],
            "neutral": ["Paid at the self-checkout, it was okay."],
            "positive": ["Checkout was quick and the cashier was lovely."],
        },
    ),
    "onboarding": (
        ["onboarding"],
        {
            "negative": [
                "Setting up my account was confusing and the guide was out of date.",
                "The welcome email links were broken.",
            ],
            "neutral": ["I just signed up and I'm still finding my way around."],
            "positive": ["Getting started was easy, the setup guide was clear."],
        },
    ),
    "cancellation": (
        ["account"],
        {
            "negative": [
                "Cancelling my subscription is impossible, the button does nothing.",
                "I cancelled but you keep charging me {amount} a month.",
            ],
            "neutral": ["Please cancel my membership at the end of the month."],
            "positive": ["Cancelling was simple and I got a confirmation straight away."],
        },
    ),
}

INCIDENT_TEXTS = [
    "I was charged tax on the full price instead of the sale price for the {product}.",
    "The receipt shows tax charged on the full price instead of the sale price.",
    "Why was I charged tax on the full price instead of the sale price? Order {order}.",
    "Sales tax was calculated on the original price, not the sale price I paid for the {product}.",
    "Charged tax on the full price instead of the sale price again, please fix your checkout.",
]


@dataclass
class Incident:
    """A burst of one complaint in one region on one day."""

    day: date
    region: str = "eu-west"
    topic: str = "pricing_promotions"
    count: int = 60
    touchpoint: str = "checkout"
    texts: list[str] = field(default_factory=lambda: list(INCIDENT_TEXTS))


@dataclass
class DemoConfig:
    n: int = 5000
    seed: int = 7
    start: date = date(2024, 3, 1)
    days: int = 28
    incident: Incident | None = None


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        product=rng.choice(PRODUCTS),
        order=f"ORD-{rng.randint(10000, 99999)}",
        amount=f"${rng.randint(5, 400)}.{rng.randint(0, 99):02d}",
        days=rng.randint(2, 14),
    )


def _nps(rng: random.Random, tone: str) -> int:
    if tone == "negative":
        return rng.choices(range(0, 11), weights=[8, 6, 8, 9, 9, 8, 6, 3, 1, 0.5, 0.3])[0]
    if tone == "neutral":
        return rng.choices(range(0, 11), weights=[0.2, 0.2, 0.5, 1, 2, 4, 6, 8, 7, 3, 1])[0]
    return rng.choices(range(0, 11), weights=[0.1, 0.1, 0.1, 0.2, 0.2, 0.5, 1, 3, 7, 10, 12])[0]


def _timestamp(rng: random.Random, cfg: DemoConfig) -> datetime:
    days = [cfg.start + timedelta(days=d) for d in range(cfg.days)]
    day = rng.choices(days, weights=[WEEKDAY_WEIGHT[d.weekday()] for d in days])[0]
    hour = rng.choices(range(24), weights=HOUR_WEIGHT)[0]
    return datetime(day.year, day.month, day.day, hour, rng.randint(0, 59), rng.randint(0, 59), tzinfo=UTC)


def _comment(
    rng: random.Random, i: int, cfg: DemoConfig, *, text: str, tone: str, topic: str, touchpoint: str,
    region: str, created_at: datetime,
) -> dict[str, Any]:  # fmt: skip
    source = _pick(rng, SOURCES)
    out: dict[str, Any] = {
        "id": f"demo-{cfg.seed}-{i:07d}",
        "text": text,
        "created_at": created_at.isoformat(),
        "source": source,
        "touchpoint": touchpoint,
        "region": region,
    }
    if source in ("survey", "email") or rng.random() < 0.2:
        out["nps"] = _nps(rng, tone)
    if source == "chat":
        out["csat"] = {"negative": rng.randint(1, 2), "neutral": 3, "positive": rng.randint(4, 5)}[tone]
    if rng.random() < 0.7:
        out["customer_id"] = f"cust-{rng.randint(1, max(10, cfg.n // 3)):06d}"
    out["attributes"] = {"plan": rng.choice(["basic", "plus", "pro"]), "language": "en"}
    return out


def generate(cfg: DemoConfig) -> Iterator[dict[str, Any]]:
    """Yield ``cfg.n`` comments (plus the incident's, if any) in time order, deterministically for a seed."""
    rng = random.Random(cfg.seed)
    topics = list(TEMPLATES)
    items: list[dict[str, Any]] = []
    for i in range(cfg.n):
        topic = rng.choice(topics)
        touchpoints, by_tone = TEMPLATES[topic]
        tone = _pick(rng, TONE_WEIGHT)
        text = _fill(rng, rng.choice(by_tone[tone]))
        if rng.random() < 0.15:  # some comments mention a second topic
            other = rng.choice([t for t in topics if t != topic])
            text += " " + _fill(rng, rng.choice(TEMPLATES[other][1][tone]))
        items.append(
            _comment(
                rng,
                i,
                cfg,
                text=text,
                tone=tone,
                topic=topic,
                touchpoint=rng.choice(touchpoints),
                region=_pick(rng, REGIONS),
                created_at=_timestamp(rng, cfg),
            )  # fmt: skip
        )
    if cfg.incident is not None:
        inc = cfg.incident
        for j in range(inc.count):
            hour = rng.choices(range(24), weights=HOUR_WEIGHT)[0]
            when = datetime(inc.day.year, inc.day.month, inc.day.day, hour, rng.randint(0, 59), tzinfo=UTC)
            item = _comment(
                rng, cfg.n + j, cfg, text=_fill(rng, rng.choice(inc.texts)), tone="negative", topic=inc.topic,
                touchpoint=inc.touchpoint, region=inc.region, created_at=when,
            )  # fmt: skip
            item["attributes"]["campaign"] = "spring-sale"
            items.append(item)
    items.sort(key=lambda c: (c["created_at"], c["id"]))
    yield from items


def write_jsonl(cfg: DemoConfig, path: Path) -> int:
    """Write the generated comments to ``path``; returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as out:
        for item in generate(cfg):
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
            n += 1
    return n

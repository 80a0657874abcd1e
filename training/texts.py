"""Turning the project's opener templates into varied texts, reproducibly."""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

NAMES = [
    "Mike",
    "Sarah",
    "John",
    "Maria",
    "David",
    "Jennifer",
    "Chris",
    "Lisa",
    "James",
    "Emily",
    "Robert",
    "Jessica",
    "Daniel",
    "Ashley",
    "Kevin",
    "Laura",
    "Brian",
    "Nicole",
    "Tom",
    "Anna",
    "Carlos",
    "Priya",
    "Ahmed",
    "Mei",
    "Olga",
    "Tyrone",
    "Kate",
    "Steve",
    "Rachel",
    "Luis",
]
SURNAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Garcia",
    "Miller",
    "Davis",
    "Martinez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Jackson",
    "Lee",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Young",
    "Patel",
    "Nguyen",
    "Kim",
    "Lopez",
    "Scott",
    "Green",
    "Baker",
    "Adams",
]
COMPANIES = [
    "Acme Insurance",
    "Riverside Dental",
    "First National Bank",
    "Blue Sky Travel",
    "Metro Auto Repair",
    "Sunrise Pharmacy",
    "Green Valley Clinic",
    "Apex Plumbing",
    "Northwind Energy",
    "Harbor Realty",
    "City Cable",
    "Summit Credit Union",
    "Pine Street Vet",
    "Lakeside Hotel",
    "Prime Wireless",
    "Golden Gate Pizza",
    "Evergreen Law Group",
    "Bright Smile Orthodontics",
    "Union Gas",
    "Maple Leaf Movers",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "the fifth", "next week"]
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Template:
    template_id: str
    label: str
    text: str
    text_class: str = ""  # what kind of call (personal-greeting, receptionist, ...)


def load_templates(path: Path | None = None) -> list[Template]:
    """The project's templates (``training/data/openers.csv``) or your own file."""
    source = path or Path(str(resources.files("training") / "data" / "openers.csv"))
    with source.open(newline="", encoding="utf-8") as fh:
        return [
            Template(r["template"], r["label"], r["text"], r.get("class") or "")
            for r in csv.DictReader(fh)
        ]


def _spoken_number(rng: random.Random) -> str:
    digits = [str(rng.randint(0, 9)) for _ in range(10)]
    return " ".join(digits[:3]) + ", " + " ".join(digits[3:6]) + ", " + " ".join(digits[6:])


def fill(text: str, rng: random.Random) -> str:
    """Replace ``{name}``-style slots with random values (two names differ)."""
    chosen: dict[str, str] = {}

    def value(slot: str) -> str:
        if slot in chosen:
            return chosen[slot]
        if slot in ("name", "name2"):
            pick = rng.choice([n for n in NAMES if n not in chosen.values()])
        elif slot in ("surname", "surname2"):
            pick = rng.choice([n for n in SURNAMES if n not in chosen.values()])
        elif slot == "company":
            pick = rng.choice(COMPANIES)
        elif slot == "number":
            pick = _spoken_number(rng)
        elif slot == "day":
            pick = rng.choice(DAYS)
        elif slot == "minutes":
            pick = str(rng.randint(2, 25))
        else:
            raise ValueError(f"unknown slot {{{slot}}} in template {text!r}")
        chosen[slot] = pick
        return pick

    return _SLOT.sub(lambda m: value(m.group(1)), text)

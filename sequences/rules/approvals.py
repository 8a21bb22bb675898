"""Approval rules: how many distinct people must approve a manual approval task, from which group, and whether
the person who triggered the sequence may be one of them. One decline ends it. Without a rule (Keptn's own
approval task) one approval is enough, from anybody who may operate sequences.

Pure: the caller says who asks, which groups they are in and who triggered the sequence."""

from dataclasses import dataclass

DEFAULT = {"required": 1, "group": "", "preventSelfApproval": False}


def rule_of(task_spec: dict | None) -> dict:
    """The rule a sequence execution kept for its approval task (a snapshot of the shipyard's task)."""
    return {**DEFAULT, **((task_spec or {}).get("approval") or {})}


def person(actor_name: str) -> str:
    """The user behind an actor's name: "alice (token ci)" and "alice" are both alice."""
    return (actor_name or "").split(" (token ", 1)[0]


@dataclass(frozen=True)
class Refusal:
    code: int
    message: str


def refusal(rule: dict, given: list[dict], who: str, who_groups: set[str], triggered_by: str,
            approve: bool) -> Refusal | None:
    """Why `who` may not approve (or decline) now, or None. A decline follows the same who-may rules: a person
    who could not approve cannot decline either."""
    verb = "approve" if approve else "decline"
    if rule["group"] and rule["group"] not in who_groups:
        return Refusal(403, f"{who} may not {verb} this task: it needs the approval of members of group "
                            f"'{rule['group']}', and {who} is not one.")
    if rule["preventSelfApproval"] and triggered_by and who == triggered_by:
        return Refusal(403, f"{who} may not {verb} this task: {who} triggered the sequence, and its approval "
                            "must come from somebody else.")
    if approve and any(entry.get("by") == who for entry in given):
        return Refusal(409, f"{who} approved this task already; {still_needed(rule, given)} more approval"
                            f"{'s' if still_needed(rule, given) != 1 else ''} from other people are needed.")
    return None


def still_needed(rule: dict, given: list[dict]) -> int:
    return max(0, rule["required"] - len(given))


def shown(rule: dict, given: list[dict], triggered_by: str) -> dict:
    """What the page and the API say of an approval: who approved, and who is still needed."""
    needed = still_needed(rule, given)
    words = ""
    if needed:
        words = f"{needed}{' more' if given else ''} approval{'s' if needed != 1 else ''}"
        if rule["group"]:
            words += f" from group '{rule['group']}'"
        if rule["required"] > 1:
            words += ", each from a different person"
        if rule["preventSelfApproval"] and triggered_by:
            words += f"; not from {triggered_by}, who triggered it"
    return {"required": rule["required"], "group": rule["group"] or None,
            "preventSelfApproval": rule["preventSelfApproval"], "given": given, "needed": needed, "words": words}

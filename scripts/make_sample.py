"""Build ftdata/samples/support_chat.jsonl: a small customer-support chat dataset for a
note-taking app, with deliberate problems of the kinds ftdata finds. Deterministic."""

from __future__ import annotations

import json
import random
from pathlib import Path

SYSTEM = "You are the support assistant for Acme Notes. Answer briefly and politely."
SYSTEM_VARIANTS = [
    "You are the support assistant for Acme Notes. Answer briefly and politely. ",  # trailing space
    "You are the support assistant for Acme notes. Answer briefly and politely.",  # case typo
    "You are a support assistant for Acme Notes. Answer briefly.",  # older version
]

QA = {
    "account": [
        (
            "How do I reset my password?",
            "Open Settings > Account > Password, choose Reset, and follow the link we email you. The link is valid for 30 minutes.",
        ),
        (
            "Can I change the email address on my account?",
            "Yes. Go to Settings > Account > Email, enter the new address and confirm it from the message we send there.",
        ),
        (
            "How do I delete my account?",
            "Go to Settings > Account > Delete account. Your notes are removed after 14 days; you can cancel during that time by signing in again.",
        ),
        (
            "I can't sign in with Google anymore.",
            "Sign out of Google in your browser, then choose Continue with Google again. If it still fails, reset your Acme password and sign in with email.",
        ),
        (
            "Is two-factor authentication available?",
            "Yes. Turn it on in Settings > Account > Security. We support authenticator apps and hardware keys.",
        ),
        (
            "How many devices can I use with one account?",
            "Free accounts sync on two devices; Pro accounts have no device limit.",
        ),
        (
            "Can two people share one account?",
            "Accounts are personal. Use a shared workspace instead: each person keeps their own login and you both edit the same notes.",
        ),
    ],
    "billing": [
        (
            "How much does Acme Notes Pro cost?",
            "Pro is $6 per month or $60 per year. Prices in your local currency are shown at checkout.",
        ),
        (
            "How do I cancel my subscription?",
            "Open Settings > Billing > Manage plan and choose Cancel. You keep Pro until the end of the period you paid for.",
        ),
        (
            "Can I get a refund?",
            "Yearly plans can be refunded within 14 days of purchase. Write to billing@acmenotes.example with your order number.",
        ),
        (
            "Do you offer student discounts?",
            "Yes, students get 50% off Pro. Verify your school email in Settings > Billing > Discounts.",
        ),
        (
            "Why was I charged twice this month?",
            "That is usually a pending authorisation that disappears within three days. If both charges settle, send us the receipts and we will refund one.",
        ),
        (
            "Which payment methods do you accept?",
            "Credit and debit cards, PayPal, and Apple or Google Pay in the mobile apps.",
        ),
        (
            "Can I switch from monthly to yearly billing?",
            "Yes. In Settings > Billing > Manage plan choose Yearly; we credit the unused part of your current month.",
        ),
    ],
    "sync": [
        (
            "My notes are not syncing between my phone and laptop.",
            "Check that both devices are signed in to the same account and online, then pull down to refresh on the phone. If a note still differs, open Settings > Sync > Resync.",
        ),
        (
            "How often do notes sync?",
            "Changes sync within a few seconds while you are online; offline edits sync as soon as you reconnect.",
        ),
        (
            "What happens if I edit the same note on two devices offline?",
            "When both reconnect, Acme keeps both versions and marks the note as a conflict so you can choose which text to keep.",
        ),
        (
            "Can I use Acme Notes offline?",
            "Yes. All notes are stored on the device and you can read and edit them offline.",
        ),
        (
            "Sync says 'quota exceeded'. What does that mean?",
            "Free accounts can sync 1 GB of attachments. Remove large attachments or upgrade to Pro for 100 GB.",
        ),
        (
            "Does sync work on a company network with a proxy?",
            "Yes, if the proxy allows HTTPS to sync.acmenotes.example on port 443. Ask your IT team to allow that host.",
        ),
    ],
    "export": [
        (
            "Can I export my notes to PDF?",
            "Yes. Open a note, choose Share > Export > PDF. To export a whole notebook, right-click it and choose Export notebook.",
        ),
        (
            "How do I export everything at once?",
            "Go to Settings > Data > Export all. You get a ZIP file with every note as Markdown and the attachments in folders.",
        ),
        (
            "Can I import notes from Evernote?",
            "Yes. Export an .enex file from Evernote, then in Acme choose File > Import > Evernote and pick the file.",
        ),
        ("Which formats can I import?", "Markdown, plain text, HTML, Evernote .enex and OneNote exports."),
        (
            "Does export keep my tags?",
            "Markdown exports keep tags as a 'tags:' line at the top of each note; PDF exports do not include tags.",
        ),
        (
            "How can I get my notes as JSON for a script?",
            "Use the API: request GET /v1/notes with your API token. Each note comes back with its id, title, body and tags.",
        ),
    ],
    "editor": [
        (
            "How do I add a checklist?",
            "Type [ ] followed by a space at the start of a line, or use Format > Checklist.",
        ),
        (
            "Can I write in Markdown?",
            "Yes. Markdown shortcuts work as you type, and you can switch a note to source view with Ctrl+Shift+M.",
        ),
        (
            "How do I insert a table?",
            "Use Insert > Table or type /table and press Enter. You can add rows with Tab from the last cell.",
        ),
        (
            "Is there a dark mode?",
            "Yes: Settings > Appearance > Theme > Dark. The apps can also follow your system theme.",
        ),
        (
            "How do I search inside attachments?",
            "Pro accounts search the text of PDFs and images automatically; use the search bar as usual.",
        ),
        (
            "Can I recover a note I deleted?",
            "Deleted notes stay in Trash for 30 days. Open Trash, select the note and choose Restore.",
        ),
        (
            "How do I format code in a note?",
            "Wrap it in a fenced block:\n\n```python\nprint('hello')\n```\n\nThe editor highlights the language you name after the backticks.",
        ),
        (
            "Can I change the default font?",
            "Yes: Settings > Appearance > Font. The change applies to all notes on that device.",
        ),
    ],
}

FOLLOW_UPS = [
    (
        "Thanks! Does that work on the mobile app too?",
        "Yes, the same option is in the mobile app under the menu in the top right.",
    ),
    ("Great, and is that included in the free plan?", "Yes, it is available on every plan."),
    ("Thank you, that fixed it.", "Glad to hear it! Let us know if anything else comes up."),
]

PLATFORM_QA = [
    (
        "How do I turn on notifications on {p}?",
        "On {p}, open Settings > Notifications and switch on Reminders. Allow notifications for Acme Notes when {p} asks.",
    ),
    (
        "Where do I find the version number on {p}?",
        "On {p}, open Settings > About. The version is at the top of the page.",
    ),
    ("How do I sign out on {p}?", "On {p}, open Settings > Account and choose Sign out at the bottom."),
]
PLATFORMS = ["Windows", "macOS", "Linux", "iOS", "Android", "the web app"]


def chat(system: str | None, *turns: tuple[str, str]) -> list[dict]:
    msgs = [{"role": "system", "content": system}] if system else []
    for role, content in turns:
        msgs.append({"role": role, "content": content})
    return msgs


def build() -> list[str]:
    rng = random.Random(7)
    records: list[dict] = []
    n = 0

    def add(messages: list[dict], category: str, **extra: object) -> None:
        nonlocal n
        n += 1
        records.append({"messages": messages, "metadata": {"id": f"s{n:04d}", "category": category, **extra}})

    for category, pairs in QA.items():
        for q, a in pairs:
            add(chat(SYSTEM, ("user", q), ("assistant", a)), category)
    for category, pairs in QA.items():
        for q, a in pairs:
            fu, fa = rng.choice(FOLLOW_UPS)
            add(chat(SYSTEM, ("user", q), ("assistant", a), ("user", fu), ("assistant", fa)), category)
    for q, a in PLATFORM_QA:
        for p in PLATFORMS:
            add(chat(SYSTEM, ("user", q.format(p=p)), ("assistant", a.format(p=p))), "account")
    # Tool use: a well-formed call and result.
    add(
        [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "Is my last invoice paid?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_invoice", "arguments": '{"which": "latest"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "paid", "amount": 60}'},
            {"role": "assistant", "content": "Yes, your latest invoice of $60 is paid."},
        ],
        "billing",
    )

    # --- deliberate problems -------------------------------------------------------
    # System prompt drift and a missing system prompt.
    for i, variant in enumerate(SYSTEM_VARIANTS):
        q, a = QA["sync"][i]
        add(chat(variant, ("user", q + " (again)"), ("assistant", a)), "sync")
    add(
        chat(
            None,
            ("user", "Do you have a Linux app?"),
            ("assistant", "Yes, there is a Linux app as AppImage, .deb and Flatpak."),
        ),
        "account",
    )
    # Exact duplicates.
    for k in (0, 3, 5):
        records.append(json.loads(json.dumps(records[k])))
    # A contradiction: the same question, opposite answers.
    add(
        chat(
            SYSTEM,
            ("user", "Can I export my notes to PDF?"),
            (
                "assistant",
                "No, PDF export is not available yet. You can print a note and save it as PDF from the print dialog.",
            ),
        ),
        "export",
    )
    # Near duplicate: a paraphrase with the same answer.
    add(chat(SYSTEM, ("user", "How can I reset my password?"), ("assistant", QA["account"][0][1])), "account")
    # Role typos: capitalised, and padded with whitespace (fixable).
    add(
        [
            {"role": "system", "content": SYSTEM},
            {"role": "User", "content": "Is there a web clipper?"},
            {"role": "assistant", "content": "Yes, for Chrome, Firefox and Edge."},
        ],
        "editor",
    )
    add(
        [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "Can I pin a note?"},
            {"role": " assistant", "content": "Yes: right-click the note and choose Pin."},
        ],
        "editor",
    )
    # Empty answer, placeholder answer, a conversation that ends with the user.
    add(chat(SYSTEM, ("user", "Do you support handwriting on tablets?"), ("assistant", "  ")), "editor")
    add(chat(SYSTEM, ("user", "What is your phone support number?"), ("assistant", "<nooutput>")), "account")
    add(
        chat(
            SYSTEM,
            ("user", "How do I share a notebook?"),
            ("assistant", "Right-click the notebook and choose Share."),
            ("user", "And can they edit it?"),
        ),
        "editor",
    )
    # A speaker label leaked into the answer, a template token, an unclosed code fence.
    add(
        chat(
            SYSTEM,
            ("user", "Can I lock a note with a password?"),
            ("assistant", "Yes, Pro accounts can lock a note from the note menu > Lock.\nUser: thanks!"),
        ),
        "editor",
    )
    add(
        chat(
            SYSTEM,
            ("user", "Can I set reminders?"),
            ("assistant", "Yes. Open the note menu and choose Remind me.<|im_end|>"),
        ),
        "editor",
    )
    add(
        chat(
            SYSTEM,
            ("user", "How do I call the API from Python?"),
            (
                "assistant",
                "Use requests:\n\n```python\nimport requests\nrequests.get('https://api.acmenotes.example/v1/notes', headers={'Authorization': 'Bearer TOKEN'})",
            ),
        ),
        "export",
    )
    # A control character pasted from a terminal.
    add(
        chat(
            SYSTEM,
            ("user", "The app shows error E42\x07 when I open it."),
            ("assistant", "E42 means the local database is locked. Quit every Acme window and open the app again."),
        ),
        "sync",
    )
    # Tool call arguments written as an object instead of a JSON string; a bad weight.
    add(
        [
            {"role": "user", "content": "Cancel my subscription please."},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "cancel_plan", "arguments": {"confirm": True}},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_2", "content": '{"ok": true}'},
            {"role": "assistant", "content": "Done: your plan is cancelled at the end of the period."},
        ],
        "billing",
    )
    add(
        [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "Is there an Apple Watch app?"},
            {"role": "assistant", "content": "Not yet.", "weight": 2},
        ],
        "account",
    )
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    # Lines no JSON writer would produce: a trailing comma, a NaN, a duplicate key.
    lines.insert(
        40,
        '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},], "metadata": {"id": "broken1", "category": "account"}}',
    )
    lines.insert(
        90,
        '{"messages": [{"role": "user", "content": "What does Pro add?"}, {"role": "assistant", "content": "More storage, unlimited devices and search in attachments."}], "metadata": {"id": "nan1", "category": "billing", "rating": NaN}}',
    )
    lines.insert(
        120,
        '{"messages": [{"role": "user", "content": "Is my data encrypted?", "content": "Is my data encrypted at rest?"}, {"role": "assistant", "content": "Yes, with AES-256 at rest and TLS in transit."}], "metadata": {"id": "dup1", "category": "account"}}',
    )
    return lines


def main() -> None:
    out = Path(__file__).resolve().parents[1] / "ftdata" / "samples" / "support_chat.jsonl"
    out.write_text("\n".join(build()) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""hookspecs.md is the generated catalogue of the first-party plugins' events, never stale."""

from pathlib import Path

from webos.catalogue import event_rows, events_markdown

FIRST_PARTY = ("auth", "blogger", "notifier", "audit")
CATALOGUE = Path(__file__).parent.parent / "hookspecs.md"


def test_hookspecs_md_is_up_to_date(make_kernel):
    kernel = make_kernel(*FIRST_PARTY)
    assert [r.name for r in kernel.records if r.status == "failed"] == []
    fresh = events_markdown(event_rows(kernel))
    assert CATALOGUE.read_text() == fresh, (
        "hookspecs.md is stale: regenerate it with `webos events --markdown > hookspecs.md`"
    )


def test_every_first_party_event_is_documented(make_kernel):
    kernel = make_kernel(*FIRST_PARTY)
    undocumented = [name for name, spec in kernel.events.items() if len(spec.doc) < 20]
    assert undocumented == []
    expected = {
        "auth:user:registered",
        "auth:login:success",
        "auth:login:failure",
        "auth:logout",
        "blogger:post:published",
        "kernel:startup",
        "kernel:shutdown",
    }
    assert set(kernel.events) == expected

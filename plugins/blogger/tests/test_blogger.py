"""The blogger plugin through its HTTP routes, logged in by the real auth plugin."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from webos_blogger.slugs import free_slug, slugify

from webos import bus
from webos.testing import register_and_login

AUTHOR = "writer@example.com"


class ReadBack:
    """An inline plugin that, on each publication, reads the post back over HTTP."""

    def __init__(self) -> None:
        self.client: Any = None
        self.seen: list[tuple[dict[str, Any], int, Any]] = []

    @bus.on("blogger:post:published")
    async def read_back(self, payload: dict[str, Any]) -> None:
        response = await self.client.get(f"/blog/posts/{payload['slug']}")
        self.seen.append((dict(payload), response.status_code, response.json()))


@pytest.fixture
def spy() -> ReadBack:
    return ReadBack()


@pytest.fixture
def kernel(make_kernel: Any, spy: ReadBack) -> Any:
    return make_kernel("auth", "blogger", plugins={"spy": spy})


@pytest.fixture
async def client(kernel: Any, make_client: Any, spy: ReadBack) -> Any:
    async with make_client(kernel) as client:
        spy.client = client
        yield client


@pytest.fixture
async def author(client: Any) -> dict[str, str]:
    return await register_and_login(client, AUTHOR)


async def publish(client: Any, headers: dict[str, str], title: str, **extra: str) -> Any:
    post = {"title": title, "body": f"About {title}.", **extra}
    return await client.post("/blog/posts", json=post, headers=headers)


@pytest.mark.anyio
async def test_publish_stores_then_emits(
    client: Any, author: dict[str, str], spy: ReadBack
) -> None:
    response = await publish(client, author, "Hello, World!")
    assert response.status_code == 201
    post = response.json()
    me = (await client.get("/auth/me", headers=author)).json()
    assert post == {
        "id": post["id"],
        "title": "Hello, World!",
        "slug": "hello-world",
        "body": "About Hello, World!.",
        "author": AUTHOR,
        "author_id": me["id"],
        "published_at": post["published_at"],
    }
    assert datetime.fromisoformat(post["published_at"]).utcoffset() == timedelta(0)
    # The listener found the post already readable when the event reached it.
    assert spy.seen == [
        ({"title": "Hello, World!", "slug": "hello-world", "author": AUTHOR}, 200, post)
    ]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer forged"}])
@pytest.mark.anyio
async def test_anonymous_cannot_publish(
    client: Any, spy: ReadBack, headers: dict[str, str]
) -> None:
    response = await publish(client, headers, "Sneaky")
    assert response.status_code == 401
    assert (await client.get("/blog/posts")).json() == []
    assert spy.seen == []


@pytest.mark.anyio
async def test_generated_slugs_are_made_unique(client: Any, author: dict[str, str]) -> None:
    slugs = [(await publish(client, author, "Crème Brûlée")).json()["slug"] for _ in range(3)]
    assert slugs == ["creme-brulee", "creme-brulee-2", "creme-brulee-3"]
    assert (await publish(client, author, "日本語")).json()["slug"] == "post"
    assert (await publish(client, author, "!!!")).json()["slug"] == "post-2"


@pytest.mark.anyio
async def test_explicit_slug(client: Any, author: dict[str, str], spy: ReadBack) -> None:
    first = await publish(client, author, "Anything", slug="my-post")
    assert first.status_code == 201 and first.json()["slug"] == "my-post"
    taken = await publish(client, author, "Something else", slug="my-post")
    assert taken.status_code == 409
    assert "'my-post' already exists" in taken.json()["detail"]
    # A generated slug steps around an explicit one.
    assert (await publish(client, author, "My post")).json()["slug"] == "my-post-2"
    assert [payload["slug"] for payload, _, _ in spy.seen] == ["my-post", "my-post-2"]


@pytest.mark.parametrize(
    ("post", "field", "message"),
    [
        ({"title": "", "body": "b"}, "title", "at least 1 character"),
        ({"title": "   ", "body": "b"}, "title", "title is blank"),
        ({"title": "t"}, "body", "Field required"),
        ({"title": "t", "body": "b", "slug": "Not A Slug"}, "slug", "is not a slug"),
        ({"title": "t", "body": "b", "slug": "-edge-"}, "slug", "is not a slug"),
    ],
)
@pytest.mark.anyio
async def test_invalid_post_is_422(
    client: Any,
    author: dict[str, str],
    spy: ReadBack,
    post: dict[str, str],
    field: str,
    message: str,
) -> None:
    response = await client.post("/blog/posts", json=post, headers=author)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", field]
    assert message in error["msg"]
    assert spy.seen == []


@pytest.mark.anyio
async def test_list_newest_first_with_limit_and_offset(client: Any, author: dict[str, str]) -> None:
    for title in ("one", "two", "three"):
        assert (await publish(client, author, title)).status_code == 201
    listed = await client.get("/blog/posts")
    assert [post["slug"] for post in listed.json()] == ["three", "two", "one"]
    page = await client.get("/blog/posts", params={"limit": 1, "offset": 1})
    assert [post["slug"] for post in page.json()] == ["two"]
    for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}):
        assert (await client.get("/blog/posts", params=params)).status_code == 422


@pytest.mark.anyio
async def test_unknown_slug_is_404(client: Any) -> None:
    response = await client.get("/blog/posts/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "No post with the slug 'nope'"}


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Hello, World!", "hello-world"),
        ("  Héllo   wörld  ", "hello-world"),
        ("Python 3.11 -- what's new?", "python-3-11-what-s-new"),
        ("日本語", "post"),
        ("a" * 300, "a" * 100),
    ],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug


def test_free_slug_fills_the_first_gap() -> None:
    assert free_slug("x", []) == "x"
    assert free_slug("x", ["x", "x-2", "x-4", "x-other"]) == "x-3"

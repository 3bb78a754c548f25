"""Discovery and faults: the modules folder, broken plugins, misspelled listeners, allow lists."""

import textwrap
from pathlib import Path

import pytest

from webos import Kernel, PluginError

pytestmark = pytest.mark.anyio

DECLARING = '''
from webos import event

@event("shop:order:placed")
def shop_order_placed(payload: dict) -> None:
    """An order was placed."""
'''


def write(root: Path, relative: str, source: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def kernel_for(webos_settings, **overrides) -> Kernel:
    # Only the modules folder and built-ins: entry points of this machine stay out of it.
    settings = webos_settings.model_copy(update=overrides)
    return Kernel(settings, entry_points=False).load()


def records(kernel):
    return {r.name: r for r in kernel.records}


@pytest.fixture
def modules(webos_settings) -> Path:
    webos_settings.modules_dir.mkdir()
    return webos_settings.modules_dir


async def test_a_package_in_the_modules_folder_is_discovered_with_its_submodules(
    webos_settings, modules, make_client
):
    write(modules, "shop/__init__.py", '"""A shop."""\n__version__ = "1.2"\n')
    write(modules, "shop/events.py", DECLARING)
    write(
        modules,
        "shop/router.py",
        """
        from fastapi import APIRouter
        from webos import bus

        router = APIRouter(prefix="/shop")
        seen = []

        @router.post("/orders")
        async def place():
            result = await bus.emit("shop:order:placed", {"order_id": 1})
            return {"ran": result.ran, "source": result.envelope.source}

        @bus.on("shop:order:placed")
        async def remember(payload):
            seen.append(payload)
        """,
    )
    write(
        modules,
        "mailer.py",
        """
        from webos import bus

        @bus.on("shop:order:placed")
        def send_mail(payload):
            pass
        """,
    )
    kernel = kernel_for(webos_settings)
    found = records(kernel)
    assert found["shop"].status == "loaded" and found["shop"].version == "1.2"
    assert found["shop"].source == f"modules-dir:{modules.resolve()}"
    assert found["shop"].declares == ["shop:order:placed"]
    assert found["shop"].listens == ["shop:order:placed"]
    assert found["shop"].routes == ["POST /shop/orders"]
    assert found["mailer"].status == "loaded"
    async with make_client(kernel) as client:
        response = await client.post("/shop/orders")
    # pluggy's order: the plugin registered last (modules load in name order) starts first.
    assert response.json() == {"ran": ["shop:remember", "mailer:send_mail"], "source": "shop"}


async def test_a_plugin_that_fails_to_import_is_skipped_and_reported(webos_settings, modules):
    write(modules, "broken/__init__.py", "import does_not_exist_anywhere\n")
    write(modules, "fine.py", DECLARING)
    kernel = kernel_for(webos_settings)
    found = records(kernel)
    assert found["broken"].status == "failed"
    assert "ModuleNotFoundError" in found["broken"].error
    assert "does_not_exist_anywhere" in found["broken"].error
    assert found["fine"].status == "loaded"
    assert kernel.problems() == [
        f"broken (modules-dir:{modules.resolve()}): {found['broken'].error}"
    ]


def test_strict_mode_makes_any_failure_fatal(webos_settings, modules):
    write(modules, "broken.py", "raise RuntimeError('nope')\n")
    with pytest.raises(PluginError, match="broken: import failed: RuntimeError: nope"):
        kernel_for(webos_settings, strict_plugins=True)


def test_a_misspelled_listener_rejects_its_plugin_with_a_suggestion(webos_settings, modules):
    write(modules, "shop.py", DECLARING)
    write(
        modules,
        "typo.py",
        """
        from webos import bus

        @bus.on("shop:order:place")
        async def on_order(payload):
            pass
        """,
    )
    found = records(kernel_for(webos_settings))
    assert found["typo"].status == "failed"
    assert found["typo"].error == (
        "listener on_order listens to event 'shop:order:place', which no loaded plugin "
        "declares; did you mean 'shop:order:placed'?"
    )
    assert found["shop"].status == "loaded"


def test_a_misspelled_pluggy_hookimpl_is_reported_too(webos_settings, modules):
    write(modules, "shop.py", DECLARING)
    write(
        modules,
        "typo.py",
        """
        from webos import hookimpl

        @hookimpl
        def shop_order_plcaed(payload):
            pass
        """,
    )
    error = records(kernel_for(webos_settings))["typo"].error
    assert "hook 'shop_order_plcaed'" in error and "did you mean 'shop_order_placed'" in error


def test_a_listener_whose_parameters_do_not_match_is_rejected(webos_settings, modules):
    write(modules, "shop.py", DECLARING)
    write(
        modules,
        "wrong.py",
        """
        from webos import bus

        @bus.on("shop:order:placed")
        async def on_order(data, user):
            pass
        """,
    )
    error = records(kernel_for(webos_settings))["wrong"].error
    assert error == (
        "listener on_order of event 'shop:order:placed' takes 'data', 'user', "
        "but its listeners receive only 'payload' and 'event'"
    )


def test_disabled_and_allow_listed_plugins(webos_settings, modules):
    write(modules, "shop.py", DECLARING)
    write(modules, "extra.py", "")
    found = records(kernel_for(webos_settings, disable_plugins="extra, health"))
    assert found["extra"].status == "disabled" and found["health"].status == "disabled"
    assert found["extra"].error == "disabled by WEBOS_DISABLE_PLUGINS"
    assert found["shop"].status == "loaded"

    found = records(kernel_for(webos_settings, load_plugins="shop"))
    assert found["shop"].status == "loaded"
    assert found["extra"].status == "disabled" and found["health"].status == "disabled"

    found = records(kernel_for(webos_settings, load_plugins=""))
    assert {r.status for name, r in found.items() if name != "kernel"} == {"disabled"}


def test_a_disabled_broken_plugin_is_never_imported(webos_settings, modules):
    write(modules, "broken.py", "raise RuntimeError('imported anyway')\n")
    found = records(kernel_for(webos_settings, disable_plugins="broken"))
    assert found["broken"].status == "disabled"


def test_duplicate_plugin_names_reject_the_later_source(webos_settings, modules):
    write(modules, "health.py", "")
    duplicates = [r for r in kernel_for(webos_settings).records if r.name == "health"]
    assert [r.status for r in duplicates] == ["loaded", "failed"]
    assert duplicates[0].source == "builtin"
    assert "already provided by builtin" in duplicates[1].error
    assert f"modules-dir:{modules.resolve()}" in duplicates[1].error


def test_an_event_declared_twice_rejects_the_later_plugin(webos_settings, modules):
    write(modules, "a_shop.py", DECLARING)
    write(modules, "b_shop.py", DECLARING)
    found = records(kernel_for(webos_settings))
    assert found["a_shop"].status == "loaded"
    assert found["b_shop"].error == (
        "event 'shop:order:placed' is already declared by plugin 'a_shop'; "
        "an event is declared once"
    )


def test_two_events_mapping_to_one_hook_is_a_declaration_error(webos_settings, modules):
    write(
        modules,
        "clash.py",
        '''
        from webos import event

        @event("a:b_c")
        def one(payload) -> None:
            """One."""

        @event("a_b:c")
        def two(payload) -> None:
            """Two."""
        ''',
    )
    error = records(kernel_for(webos_settings))["clash"].error
    assert "both map to the hook 'a_b_c'" in error


def test_a_rejected_plugin_takes_its_events_and_their_listeners_with_it(webos_settings, modules):
    write(
        modules,
        "a_source.py",
        DECLARING
        + """
from webos import bus

@bus.on("shop:nothing")
async def broken(payload):
    pass
""",
    )
    write(
        modules,
        "b_listener.py",
        """
        from webos import bus

        @bus.on("shop:order:placed")
        async def on_order(payload):
            pass
        """,
    )
    found = records(kernel_for(webos_settings))
    assert found["a_source"].status == "failed"
    assert found["b_listener"].status == "failed"
    assert "shop:order:placed" in found["b_listener"].error


def test_a_router_that_is_not_an_apirouter_fails_the_plugin(webos_settings, modules):
    write(modules, "odd.py", "router = 42\n")
    assert "not a fastapi.APIRouter" in records(kernel_for(webos_settings))["odd"].error


def test_installed_plugins_are_found_through_entry_points():
    from webos.discovery import entry_point_candidates

    sources = {c.name: c.source for c in entry_point_candidates()}
    # The first-party plugins are installed as their own distributions.
    assert sources.get("audit") == "entrypoint:webos-audit"


def test_listening_to_a_disabled_plugins_event_names_the_disabled_plugin(webos_settings, modules):
    write(modules, "shop.py", DECLARING)
    write(
        modules,
        "mailer.py",
        """
        from webos import bus

        @bus.on("shop:order:placed")
        async def send_mail(payload):
            pass
        """,
    )
    found = records(kernel_for(webos_settings, disable_plugins="shop"))
    assert found["mailer"].status == "failed"
    assert "(not loaded, so declaring nothing: shop)" in found["mailer"].error


async def test_invalid_input_never_echoes_a_password(make_kernel, make_client):
    from fastapi import APIRouter
    from pydantic import BaseModel, Field

    class Form(BaseModel):
        email: str
        password: str = Field(min_length=8)

    class Plugin:
        router = APIRouter()

        @staticmethod
        @router.post("/form")
        async def form(body: Form) -> dict:
            return {}

    async with make_client(make_kernel(plugins={"form": Plugin()})) as client:
        response = await client.post("/form", json={"email": 3, "password": "short"})
    assert response.status_code == 422
    errors = {error["loc"][-1]: error for error in response.json()["detail"]}
    assert "input" not in errors["password"] and '"short"' not in response.text
    assert errors["email"]["input"] == 3

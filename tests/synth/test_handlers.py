"""The handler registry: rules name handlers, the registry is the only way to them."""

from __future__ import annotations

import types

import pytest

from guard.synth.handlers import Registry, handler, handlers_in, is_handler


def module_with(**functions: object) -> types.ModuleType:
    module = types.ModuleType("acme_handlers")
    for name, fn in functions.items():
        setattr(module, name, fn)
    return module


@handler
def create_order(ctx: object) -> None:
    return None


def not_marked(ctx: object) -> None:
    return None


def test_only_marked_functions_bound_to_public_names_are_collected():
    acme = module_with(create_order=create_order, helper=not_marked)
    assert handlers_in("acme", acme) == {"acme.create_order": create_order}
    hidden = module_with(_create_order=create_order)
    assert handlers_in("acme", hidden) == {}
    assert is_handler(create_order) and not is_handler(not_marked)


def test_a_handler_made_by_a_factory_is_collected_under_the_name_it_is_bound_to():
    def factory(kind: str):
        @handler
        def made(ctx: object) -> str:
            return kind
        return made

    acme = module_with(retrieve_order=factory("order"))
    assert list(handlers_in("acme", acme)) == ["acme.retrieve_order"]


def test_one_handler_under_two_names_is_an_error():
    # e.g. a handler imported into a second module of another namespace
    with pytest.raises(ValueError, match="registered as both 'acme.create_order' and "
                                         "'acme_hooks.create_order'"):
        Registry([handlers_in("acme", module_with(create_order=create_order)),
                  handlers_in("acme_hooks", module_with(create_order=create_order))])


def test_two_providers_claiming_one_name_is_an_error():
    @handler
    def other(ctx: object) -> None:
        return None

    with pytest.raises(ValueError, match="'acme.create_order' is registered twice"):
        Registry([{"acme.create_order": create_order}, {"acme.create_order": other}])
    # the same function reached twice is no conflict
    assert len(Registry([{"acme.create_order": create_order}] * 2)) == 1


@pytest.mark.parametrize(("name", "message"), [
    ("create_order", "handler 'create_order' must be 'provider.function'"),
    ("acme.", "handler 'acme.' must be 'provider.function'"),
    ("acme.create_ordr", "unknown handler 'acme.create_ordr' (did you mean acme.create_order?)"),
    ("acme.refund_everything", "unknown handler 'acme.refund_everything': provider 'acme' has "
                               "no handler 'refund_everything'"),
    ("nosuch.thing", "unknown handler 'nosuch.thing': no provider 'nosuch' (providers with "
                     "handlers: acme)"),
])
def test_an_unknown_name_says_what_is_wrong(name, message):
    registry = Registry([{"acme.create_order": create_order}])
    with pytest.raises(LookupError) as e:
        registry.resolve(name)
    assert str(e.value) == message


def test_a_registry_is_a_read_only_mapping_of_names():
    registry = Registry([{"acme.create_order": create_order}])
    assert dict(registry) == {"acme.create_order": create_order}
    assert registry.resolve("acme.create_order") is create_order
    assert not hasattr(registry, "__setitem__")

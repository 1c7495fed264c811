"""kit.resources.masks: AIP-134 merges and create sanitising, driven by field_behavior annotations."""

from __future__ import annotations

from typing import Any

import pytest
from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.field_mask_pb2 import FieldMask

from kit.errors import InvalidArgument
from kit.resources.masks import merge_update, output_only_paths, sanitize_create
from salesops.notify.v1 import template_pb2

F = descriptor_pb2.FieldDescriptorProto
OUT, IMM = field_behavior_pb2.OUTPUT_ONLY, field_behavior_pb2.IMMUTABLE


def _build() -> tuple[Any, Any]:
    """Test messages with every shape the merge meets (nested, list, map, output-only inside)."""
    fp = descriptor_pb2.FileDescriptorProto(
        name="kittest/masks.proto", package="kittest.masks", syntax="proto3"
    )
    part = fp.message_type.add(name="Part")
    part.field.add(name="label", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    computed = part.field.add(name="computed", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    computed.options.Extensions[field_behavior_pb2.field_behavior].append(OUT)
    code = part.field.add(name="code", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    code.options.Extensions[field_behavior_pb2.field_behavior].append(IMM)
    thing = fp.message_type.add(name="Thing")

    def add(name: str, number: int, kind: int, *behaviors: int, **kw: Any) -> None:
        field = thing.field.add(
            name=name, number=number, type=kind, label=kw.pop("label", F.LABEL_OPTIONAL), **kw
        )
        field.options.Extensions[field_behavior_pb2.field_behavior].extend(behaviors)

    add("id", 1, F.TYPE_STRING, IMM)
    add("name", 2, F.TYPE_STRING)
    add("revision", 3, F.TYPE_INT32, OUT)
    add("part", 4, F.TYPE_MESSAGE, type_name=".kittest.masks.Part")
    add("parts", 5, F.TYPE_MESSAGE, type_name=".kittest.masks.Part", label=F.LABEL_REPEATED)
    entry = thing.nested_type.add(name="ByKeyEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(
        name="value", number=2, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL, type_name=".kittest.masks.Part"
    )
    add("by_key", 6, F.TYPE_MESSAGE, type_name=".kittest.masks.Thing.ByKeyEntry", label=F.LABEL_REPEATED)
    add("etag", 7, F.TYPE_STRING)
    add("kind", 8, F.TYPE_STRING, IMM)
    add("tags", 9, F.TYPE_STRING, label=F.LABEL_REPEATED)
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(fp.name)
    except KeyError:
        pool.Add(fp)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("kittest.masks.Thing")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("kittest.masks.Part")),
    )


Thing, Part = _build()


def thing(**kw: Any) -> Any:
    return Thing(**kw)


def stored() -> Any:
    return thing(
        id="T1",
        name="old",
        revision=3,
        kind="k",
        part=Part(label="p", computed="c"),
        parts=[Part(label="a"), Part(label="b")],
        tags=["x", "y"],
        etag="3",
    )


def mask(*paths: str) -> FieldMask:
    return FieldMask(paths=list(paths))


def test_explicit_paths_replace_only_those_fields() -> None:
    current, incoming = stored(), thing(name="new", tags=["z"], revision=99)
    merged = merge_update(current, incoming, mask("name", "tags"))
    assert merged.name == "new" and list(merged.tags) == ["z"]
    assert merged.revision == 3 and len(merged.parts) == 2
    assert current.name == "old"  # inputs untouched


def test_named_field_absent_in_incoming_is_cleared() -> None:
    merged = merge_update(stored(), thing(), mask("name", "part", "parts"))
    assert merged.name == "" and not merged.HasField("part") and len(merged.parts) == 0


def test_empty_mask_means_the_fields_present() -> None:
    merged = merge_update(stored(), thing(id="T1", tags=["only"]), mask())
    assert list(merged.tags) == ["only"] and merged.name == "old" and merged.kind == "k"


def test_star_replaces_everything_but_output_only_and_unset_immutables() -> None:
    merged = merge_update(stored(), thing(name="n"), mask("*"))
    assert merged.name == "n" and list(merged.tags) == [] and len(merged.parts) == 0
    assert merged.revision == 3 and merged.id == "T1" and merged.kind == "k"
    with pytest.raises(InvalidArgument):
        merge_update(stored(), thing(kind="other"), mask("*"))
    with pytest.raises(InvalidArgument):
        merge_update(stored(), thing(), mask("*", "name"))


def test_output_only_and_etag_paths_are_ignored() -> None:
    merged = merge_update(
        stored(),
        thing(revision=7, etag="9", part=Part(computed="zz")),
        mask("revision", "etag", "part.computed"),
    )
    assert merged.revision == 3 and merged.etag == "3" and merged.part.computed == "c"


def test_immutable_changes_are_refused_same_values_accepted() -> None:
    with pytest.raises(InvalidArgument) as caught:
        merge_update(stored(), thing(kind="other"), mask("kind"))
    assert caught.value.violations[0].field == "update_mask.kind"
    with pytest.raises(InvalidArgument):
        merge_update(stored(), thing(), mask("kind"))  # clearing is a change too
    assert merge_update(stored(), thing(kind="k", name="n"), mask("kind", "name")).name == "n"
    with pytest.raises(InvalidArgument):
        merge_update(stored(), thing(id="T2"), mask())


@pytest.mark.parametrize("path", ["nope", "part.nope", "parts.label", "name.x", ""])
def test_unknown_paths_are_invalid_argument(path: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        merge_update(stored(), thing(name="n"), mask(path))
    assert caught.value.violations[0].field == "update_mask"


def test_nested_path_merges_into_the_submessage() -> None:
    merged = merge_update(stored(), thing(part=Part(label="new")), mask("part.label"))
    assert merged.part.label == "new" and merged.part.computed == "c"


def test_sanitize_create_clears_output_only_at_every_depth() -> None:
    msg = stored()
    msg.by_key["a"].CopyFrom(Part(label="l", computed="c"))
    msg.parts[0].computed = "c"
    clean = sanitize_create(msg)
    assert clean.revision == 0 and clean.part.computed == "" and clean.part.label == "p"
    assert (
        clean.parts[0].computed == "" and clean.by_key["a"].computed == "" and clean.by_key["a"].label == "l"
    )
    assert clean.name == "old" and msg.revision == 3  # a copy


def test_real_contract_annotations_are_read() -> None:
    assert set(output_only_paths(template_pb2.Template.DESCRIPTOR)) >= {"built_in", "revision", "audit"}
    current = template_pb2.Template(template_id="t", template_key="a.b", locale="en", title="x", revision=2)
    with pytest.raises(InvalidArgument):
        merge_update(current, template_pb2.Template(locale="zh-CN"), mask("locale"))
    merged = merge_update(current, template_pb2.Template(title="y", built_in=True), mask())
    assert merged.title == "y" and not merged.built_in and merged.revision == 2


def test_a_replaced_submessage_keeps_its_stored_output_only_fields() -> None:
    # Naming a message (or sending it under an implicit mask) must not smuggle its output-only parts in.
    for paths in (("part",), ()):
        merged = merge_update(stored(), thing(part=Part(label="new", computed="forged")), mask(*paths))
        assert merged.part.label == "new" and merged.part.computed == "c"
    fresh = thing(id="T1")
    merged = merge_update(fresh, thing(part=Part(label="n", computed="forged")), mask("part"))
    assert merged.part.label == "n" and merged.part.computed == ""


def test_replaced_list_and_map_items_take_no_output_only_values() -> None:
    incoming = thing(parts=[Part(label="z", computed="forged")])
    incoming.by_key["k"].CopyFrom(Part(label="l", computed="forged"))
    for paths in (("parts", "by_key"), (), ("*",)):
        merged = merge_update(stored(), incoming, mask(*paths))
        assert [(p.label, p.computed) for p in merged.parts] == [("z", "")]
        assert merged.by_key["k"].label == "l" and merged.by_key["k"].computed == ""


def test_real_contract_nested_output_only_fields_are_not_taken_from_input() -> None:
    from salesops.notify.v1 import channel_config_pb2
    from salesops.pipeline.v1 import deal_pb2

    current = deal_pb2.Deal(deal_id="d1")
    current.line_items.add(sku="a", quantity=1)
    forged = deal_pb2.Deal()
    forged.line_items.add(sku="a", quantity=1).net_amount.amount_minor = 999_999_999
    for paths in (("line_items",), ()):
        assert not merge_update(current, forged, mask(*paths)).line_items[0].HasField("net_amount")
    cfg = channel_config_pb2.ChannelConfig()
    cfg.sms.access_key_secret.set, cfg.sms.access_key_secret.hint = True, "REAL"
    fake = channel_config_pb2.ChannelConfig()
    fake.sms.access_key_secret.hint = "FAKE"
    for paths in (("sms",), ("sms.access_key_secret",)):
        secret = merge_update(cfg, fake, mask(*paths)).sms.access_key_secret
        assert secret.hint == "REAL" and secret.set


def test_an_immutable_field_inside_a_replaced_submessage_cannot_change() -> None:
    current = stored()
    current.part.code = "c1"
    with pytest.raises(InvalidArgument) as caught:
        merge_update(current, thing(part=Part(label="n", code="c2")), mask("part"))
    assert caught.value.violations[0].field == "update_mask.part.code"
    kept = merge_update(current, thing(part=Part(label="n")), mask("part"))
    assert kept.part.code == "c1" and kept.part.label == "n"

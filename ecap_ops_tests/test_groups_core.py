"""Consumer groups as typed data, and how the readers' findings combine (core/groups.py),
and kafka-python's answers turned into them (gateway/groups.py's converters). No broker."""

from ecap_ops.core.groups import (
    ConsumerGroup,
    GroupDescription,
    GroupListing,
    GroupMember,
    combine,
)
from ecap_ops.gateway.groups import describable, description_from, listing_from


def test_listing_and_description_from_kafka_python():
    listing = listing_from({"group_id": "g", "protocol_type": "consumer", "group_state": "Stable"})
    assert listing == GroupListing("g", "Stable", "classic", "consumer")
    assert listing.is_consumer_group and describable(listing)
    share = listing_from({"group_id": "s", "protocol_type": "share", "group_type": "share"})
    # Share groups consume too: listed, described (ShareGroupDescribe) and measured.
    assert share.is_consumer_group and describable(share) and share.state == "Unknown"
    connect = listing_from({"group_id": "w", "protocol_type": "connect", "group_type": "classic"})
    assert not connect.is_consumer_group and describable(connect)
    d = description_from(
        "g",
        {
            "group_state": "Stable",
            "error": None,
            "members": [
                {
                    "member_id": "m2",
                    "client_id": "c",
                    "client_host": "/127.0.0.1",
                    "member_assignment": {
                        "assigned_partitions": [{"topic": "t", "partitions": [2, 0]}]
                    },
                    "member_metadata": {"topics": ["t"]},
                },
                {"member_id": "m1", "member_assignment": None},
            ],
        },
    )
    assert d.state == "Stable" and d.member_ids == ("m1", "m2")
    assert d.members[0] == GroupMember("m2", "c", "/127.0.0.1", {"t": (0, 2)}, ("t",))
    assert d.assigned == frozenset({("t", 0), ("t", 2)})
    err = description_from("k", {"error": "GroupIdNotFoundError"})
    assert err.members is None and err.error == "GroupIdNotFoundError"


def test_combine_prefers_the_coordinators_state_and_keeps_what_is_missing_unknown():
    listing = GroupListing("g", "Stable", "classic", "consumer")
    desc = GroupDescription("g", "Empty", ())
    g = combine(listing, desc, {("t", 0): 5}, "g")
    assert g == ConsumerGroup("g", "Empty", "classic", "consumer", (), {("t", 0): 5})
    assert g.member_count == 0 and g.topics() == {"t"} and g.assigned == frozenset()
    # Not described (a KIP-848 group): members unknown, state from the listing.
    g = combine(GroupListing("k", "Stable", "consumer", "consumer"), None, None, "k")
    assert (g.state, g.members, g.member_count, g.committed) == ("Stable", None, None, {})
    # Described with an error: the error is kept, members unknown.
    g = combine(listing, GroupDescription("g", "Unknown", None, "boom"), {}, "g")
    assert (g.state, g.members, g.error) == ("Stable", None, "boom")
    assert combine(None, None, None, "x").state == "Unknown"

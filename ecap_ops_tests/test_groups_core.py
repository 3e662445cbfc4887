"""Consumer groups as typed data, and how the readers' findings combine (core/groups.py),
and kafka-python's answers turned into them (gateway/groups.py's converters). No broker."""

from hypothesis import given
from hypothesis import strategies as st

from ecap_ops.core.groups import (
    ConsumerGroup,
    GroupDescription,
    GroupListing,
    GroupMember,
    combine,
    share_position,
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


@given(
    start=st.integers(0, 10**6),
    extra=st.integers(0, 10**6),
    broker_lag=st.one_of(st.none(), st.integers(0, 3 * 10**6)),
)
def test_a_share_group_stands_where_its_coordinators_lag_puts_it_within_spso_and_end(
    start, extra, broker_lag
):
    end = start + extra
    pos = share_position(start, broker_lag, end)
    assert start <= pos <= end  # never before the SPSO, never past the end
    if broker_lag is None:
        assert pos == start  # nothing better known than the SPSO
    elif broker_lag <= extra:
        assert end - pos == broker_lag  # lag counted from it is the coordinator's own
    assert share_position(start, broker_lag, None) == start  # no end offset: the SPSO


def test_positions_at_moves_only_share_groups_with_a_reported_lag():
    listing = GroupListing("s", "Empty", "share", "share")
    tp, other = ("t", 0), ("t", 1)
    g = combine(listing, None, {tp: 10, other: 5}, "s", {tp: 0})
    assert g.positions == {tp: 10, other: 5}  # the SPSOs, as read
    assert g.positions_at({tp: 13, other: 9}) == {tp: 13, other: 5}  # acknowledged up to 13
    classic = combine(GroupListing("c", "Empty", "classic", "consumer"), None, {tp: 3}, "c")
    assert classic.positions_at({tp: 13}) == {tp: 3} and classic.share_lag == {}


def test_a_describe_groups_answer_reads_as_kafka_pythons_describe_groups_reads_it():
    """Groups with no members are read straight from the answer; the expected values are
    kafka-python's own reading of the same bytes (`_describe_groups_process_response`,
    what its `describe_groups` returns), as the gateway read every group before."""
    from kafka.admin._acls import ACLAdminMixin
    from kafka.admin._groups import GroupAdminMixin
    from kafka.protocol.admin import DescribeGroupsResponse
    from kafka.protocol.consumer.metadata import (
        ConsumerProtocolAssignment,
        ConsumerProtocolSubscription,
    )

    from ecap_ops.gateway.groups import classic_descriptions_from

    Group = DescribeGroupsResponse.DescribedGroup
    Member = Group.DescribedGroupMember
    sub = ConsumerProtocolSubscription(version=0, topics=["t"], user_data=None).encode()
    assignment = ConsumerProtocolAssignment(
        version=0, assigned_partitions=[("t", [2, 0])], user_data=None
    ).encode()
    member = Member(
        member_id="m1",
        group_instance_id=None,
        client_id="c",
        client_host="/127.0.0.1",
        member_metadata=sub,
        member_assignment=assignment,
    )

    def group(gid, error=0, state="Empty", members=()):
        return Group(
            error_code=error,
            group_id=gid,
            group_state=state,
            protocol_type="consumer",
            protocol_data="range" if members else "",
            members=list(members),
            authorized_operations=set(),
        )

    answer = DescribeGroupsResponse(
        throttle_time_ms=0,
        groups=[
            group("empty"),
            group("dead", state="Dead"),
            group("gone", error=69, state=""),
            group("busy", state="Stable", members=[member]),
            group("blank", state=""),
        ],
    )
    data = answer.encode(version=5)
    admin = type("Admin", (GroupAdminMixin, ACLAdminMixin), {})()
    theirs = admin._describe_groups_process_response(DescribeGroupsResponse.decode(data, version=5))
    expected = {g: description_from(g, d) for g, d in theirs.items()}
    got = classic_descriptions_from(admin, DescribeGroupsResponse.decode(data, version=5))
    assert got == expected
    assert got["busy"].assigned == frozenset({("t", 0), ("t", 2)})
    assert got["empty"].members == () and got["blank"].state == "Unknown"
    assert got["gone"].members is None and "GroupIdNotFound" in got["gone"].error

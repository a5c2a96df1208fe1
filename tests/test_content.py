"""Unit tests for proof by content: one copy per image, byte-identical twins counted per content."""

from __future__ import annotations

from seed.core.content import Copy, Verdict, reconcile

TWIN, OTHER = "d-twin", "d-other"


def verdict_copies(v: Verdict) -> list[str]:
    """Every copy the verdict names once, wherever it put it."""
    return sorted([*v.keep.values(), *v.surplus, *v.foreign, *v.unproven])


def test_two_identical_images_and_three_unnamed_copies_keep_two_and_name_one_surplus():
    members = {0: TWIN, 1: TWIN}
    copies = [Copy("a", TWIN), Copy("b", TWIN), Copy("c", TWIN)]
    v = reconcile(members, copies)
    assert sorted(v.keep) == [0, 1] and v.adopt == v.keep
    assert len(set(v.keep.values())) == 2  # one copy each, never the same one twice
    assert len(v.surplus) == 1 and v.surplus[0] not in v.keep.values()
    assert verdict_copies(v) == ["a", "b", "c"]
    assert v.missing == [] and v.foreign == [] and v.unproven == []


def test_a_copy_named_by_an_image_is_that_images_even_when_its_twin_has_none():
    members = {0: TWIN, 1: TWIN}
    copies = [Copy("named", TWIN, owner=1), Copy("free", TWIN)]
    v = reconcile(members, copies)
    assert v.keep == {0: "free", 1: "named"}
    assert v.adopt == {0: "free"}  # the named one needed no adoption
    assert v.surplus == []


def test_a_twins_named_copy_is_not_adopted_for_the_other_twin():
    v = reconcile({0: TWIN, 1: TWIN}, [Copy("ones", TWIN, owner=1)])
    assert v.keep == {1: "ones"} and v.missing == [0] and v.adopt == {}


def test_the_chosen_copy_is_kept_and_an_images_second_own_copy_is_surplus():
    members = {0: OTHER}
    copies = [Copy("first", OTHER, owner=0), Copy("second", OTHER, owner=0)]
    v = reconcile(members, copies, chosen={0: "second"})
    assert v.keep == {0: "second"} and v.surplus == ["first"] and v.adopt == {}
    v = reconcile(members, copies)  # none chosen: the first of its own copies
    assert v.keep == {0: "first"} and v.surplus == ["second"]


def test_an_own_copy_wins_over_an_unnamed_one_when_the_chosen_copy_is_gone():
    members = {0: OTHER}
    copies = [Copy("unnamed", OTHER), Copy("own", OTHER, owner=0)]
    v = reconcile(members, copies, chosen={0: "lost-one"})
    assert v.keep == {0: "own"} and v.adopt == {} and v.surplus == ["unnamed"]


def test_a_chosen_copy_that_another_image_named_is_not_kept():
    v = reconcile({0: OTHER, 1: OTHER}, [Copy("x", OTHER, owner=1)], chosen={0: "x"})
    assert v.keep == {1: "x"} and v.missing == [0]


def test_unreadable_copies_are_unproven_and_never_adopted():
    v = reconcile({0: TWIN}, [Copy("blind", None)])
    assert v.unproven == ["blind"] and v.missing == [0] and v.keep == {}


def test_content_that_is_no_image_of_the_data_set_is_foreign():
    v = reconcile({0: TWIN}, [Copy("cat", "d-cat"), Copy("mine", TWIN)])
    assert v.keep == {0: "mine"} and v.foreign == ["cat"] and v.surplus == []


def test_images_with_no_copy_are_missing():
    v = reconcile({0: TWIN, 1: OTHER, 2: "d-third"}, [Copy("t", TWIN)])
    assert v.keep == {0: "t"} and v.missing == [1, 2]
    assert reconcile({0: TWIN}, []).missing == [0]


def test_a_copy_named_by_an_image_outside_the_members_is_left_alone():
    v = reconcile({0: OTHER}, [Copy("not-ours", OTHER, owner=7)])
    assert v.missing == [0] and verdict_copies(v) == []


def test_a_yale_like_set_with_twins_and_extra_copies_comes_out_exactly_once():
    members = {i: f"d{i // 2}" if i < 6 else f"d{i}" for i in range(10)}  # 0/1, 2/3, 4/5 are twins
    copies = [Copy(f"named{i}", members[i], owner=i) for i in (0, 3, 6, 7)]
    copies += [Copy(f"free{i}", members[i]) for i in (1, 2, 4, 5, 8)]
    copies += [Copy("again2", "d1"), Copy("again9", "d9", owner=9), Copy("dup9", "d9", owner=9)]
    v = reconcile(members, copies)
    assert sorted(v.keep) == list(range(10)) and v.missing == []
    assert sorted(v.adopt) == [1, 2, 4, 5, 8]
    assert sorted(v.surplus) == ["again2", "dup9"] and v.keep[9] == "again9"
    kept = list(v.keep.values())
    assert len(kept) == len(set(kept))
    assert all(next(c.digest for c in copies if c.uuid == u) == members[i] for i, u in v.keep.items())

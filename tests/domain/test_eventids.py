import multiprocessing
import os
import uuid

import pytest

from cargohold.domain import eventids
from cargohold.domain.eventids import new_id


def test_ids_are_random_uuids_in_form() -> None:
    for text in (new_id() for _ in range(100)):
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_ids_never_repeat_in_a_process() -> None:
    ids = [new_id() for _ in range(50_000)]
    assert len(set(ids)) == len(ids)


def test_the_counter_wrapping_draws_a_new_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eventids, "_COUNTER_LIMIT", 3)
    ids = eventids._Ids()
    made = [ids.next() for _ in range(7)]
    assert len(set(made)) == 7
    assert len({text[:24] for text in made}) >= 3  # a prefix per three ids


def _child_ids(queue: "multiprocessing.Queue[list[str]]") -> None:
    queue.put([new_id() for _ in range(1000)])


def test_a_forked_child_makes_ids_of_its_own() -> None:
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[str]] = context.Queue()
    new_id()  # the parent's counter has moved; a child that copied it must not repeat it
    child = context.Process(target=_child_ids, args=(queue,))
    child.start()
    theirs = queue.get(timeout=30)
    child.join(timeout=30)
    ours = [new_id() for _ in range(1000)]
    assert not set(theirs) & set(ours)
    assert {text[:24] for text in theirs}.isdisjoint({text[:24] for text in ours})
    assert os.getpid() != child.pid

"""The course's lessons in order: one home for their numbers, titles and one-line topics.

``scripts/navigation.py`` writes from this list each notebook's title, its one-line
"where you are" map, its previous/next links and lesson 00's course map;
``tests/test_notebook_hygiene.py`` checks that the notebooks match it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lesson:
    """One lesson: its number, its notebook's file stem, its title and its topic."""

    number: int
    stem: str
    title: str
    topic: str

    @property
    def file(self) -> str:
        return f"{self.stem}.ipynb"

    @property
    def label(self) -> str:
        return f"{self.number:02d} · {self.title}"


LESSONS: tuple[Lesson, ...] = (
    Lesson(0, "00_start_here", "Start here",
           "how the course works; reading diagrams; the lab"),
    Lesson(1, "01_why_distributed_transactions", "Why distributed transactions",
           "one business operation over several services; a crash between two local "
           "commits; ACID across nodes"),
    Lesson(2, "02_two_phase_commit", "Two-phase commit",
           "voting, then deciding; the forced log writes that make it safe; recovery"),
    Lesson(3, "03_when_2pc_hurts", "When 2PC hurts",
           "blocking: a coordinator crash leaves participants in doubt, holding locks"),
    Lesson(4, "04_three_phase_commit", "Three-phase commit",
           "an extra round so that survivors can decide without the coordinator"),
    Lesson(5, "05_3pc_under_partitions", "3PC under partitions",
           "how a network split breaks 3PC's promise and atomicity with it"),
    Lesson(6, "06_paxos_commit", "Paxos Commit",
           "every vote decided by a majority of acceptors: no blocking on a coordinator "
           "crash, no split under a partition"),
    Lesson(7, "07_sagas_by_orchestration", "Sagas by orchestration",
           "local transactions plus compensations, run by an orchestrator"),
    Lesson(8, "08_sagas_by_choreography", "Sagas by choreography",
           "the same saga driven by events, with nobody in charge"),
    Lesson(9, "09_designing_sagas", "Designing sagas",
           "pivots, retries, idempotency and semantic locks: compensation that works"),
    Lesson(10, "10_choosing_a_protocol", "Choosing a protocol",
           "the trade-offs side by side, measured: messages, delays, blocking, isolation"),
    Lesson(11, "11_model_checking", "Model checking",
           "every interleaving searched: blocking states, splits, Lamport's TLA+ models"),
    Lesson(12, "12_real_databases", "Real databases",
           "the same protocols in real processes over SQLite and PostgreSQL, with real "
           "crashes and power cuts"),
)


def where_you_are(lesson: Lesson) -> str:
    """The one-line map at the top of a lesson, the lesson itself in bold."""
    marks = [f"**{other.label}**" if other == lesson
             else f'[{other.number:02d}]({other.file} "{other.title}")'
             for other in LESSONS]
    return "*Where you are:* " + " · ".join(marks)


def previous_and_next(lesson: Lesson) -> str:
    """The links that end a lesson: back to the previous one, on to the next."""
    index = LESSONS.index(lesson)
    parts = []
    if index > 0:
        before = LESSONS[index - 1]
        parts.append(f"← Previous: [{before.label}]({before.file})")
    if index + 1 < len(LESSONS):
        after = LESSONS[index + 1]
        parts.append(f"Next: [{after.label}]({after.file}) →")
    else:
        parts.append("This is the last lesson: [back to the start](00_start_here.ipynb)")
    return "---\n\n" + " · ".join(parts)


def course_map() -> str:
    """Lesson 00's table of every lesson, each a link."""
    rows = ["| Lesson | Title | What it is about |", "| --- | --- | --- |"]
    rows += [f"| {lesson.number:02d} | [{lesson.title}]({lesson.file}) | {lesson.topic} |"
             for lesson in LESSONS]
    return "## The map of the course\n\n" + "\n".join(rows)

"""Named scenarios of Paxos Commit, each described for learners."""

from __future__ import annotations

from ..engine.faults import crash, heal, partition, vote_no
from ..simulation.scenario import Scenario

P = "paxos-commit"
AFTER_THE_VOTES = crash("coordinator", when="coordinator receives P2B")

PAXOS_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        P, name="paxos-commit-happy",
        description="Paxos Commit with three participants and three acceptors (F=1): each "
                    "participant forces its vote and sends it to a1 and a2, which bundle the "
                    "votes into one write and one message to the leader; everyone commits.",
    ),
    Scenario(
        P, name="paxos-commit-vote-no", faults=(vote_no("p2"),),
        description="p2 cannot do its part and votes Aborted in its own Paxos instance: the "
                    "acceptors pass it on at once and the leader aborts everyone.",
    ),
    Scenario(
        P, name="paxos-commit-leader-crash", faults=(AFTER_THE_VOTES,),
        description="The leader crashes after the votes are in, as in "
                    "2pc-coordinator-crash-blocks, but nobody stays blocked: the in-doubt "
                    "participants ask the acceptors, a1 takes over with ballot 1, finds "
                    "Prepared accepted in every instance, and commits.",
    ),
    Scenario(
        P, name="paxos-commit-leader-crash-early",
        faults=(crash("coordinator", when="coordinator sends PREPARE to p1"),),
        description="The leader crashes after sending PREPARE to p1 only: p2 and p3 abort "
                    "alone; p1, in doubt, asks; a1 takes over and finds that no Prepared "
                    "can have been chosen for p2 and p3, so everyone aborts.",
    ),
    Scenario(
        P, name="paxos-commit-acceptor-crash", faults=(crash("a1", at_step=0),),
        description="Acceptor a1 is down (F=1 tolerates one): ballot 0 cannot reach a "
                    "majority, so the leader runs ballot 4 with a2 and a3, learns that "
                    "Prepared may have been chosen everywhere, and commits.",
    ),
    Scenario(
        P, name="paxos-commit-f2-three-down", options={"acceptors": 5},
        faults=(crash("a1", at_step=0), crash("a2", at_step=0), AFTER_THE_VOTES),
        description="Five acceptors (F=2), a1 and a2 down, and the leader crashes too: a3, "
                    "the lowest-numbered live acceptor, takes over with a4 and a5 and "
                    "commits.",
    ),
    Scenario(
        P, name="paxos-commit-majority-partitioned",
        faults=(partition(["a1", "a2"]),),
        description="A partition cuts a1 and a2, a majority of the acceptors, off from the "
                    "start: no ballot can finish, so the participants wait in doubt. "
                    "Blocked, but nobody decides anything inconsistent.",
    ),
    Scenario(
        P, name="paxos-commit-partition-heals",
        faults=(partition(["a1", "a2"]), heal(at_time=330)),
        description="The same partition heals at time 330: the leader's ballot 4, which it "
                    "kept sending, now reaches a1 and a2; they never got a vote, so no "
                    "Prepared can have been chosen: the leader proposes Aborted everywhere "
                    "and everyone aborts.",
    ),
    Scenario(
        P, name="paxos-commit-faster", options={"faster": True},
        description="Faster Paxos Commit: the acceptors send their phase 2b messages to "
                    "every participant, which learns the outcome itself, one message "
                    "delay sooner (and with more messages).",
    ),
    Scenario(
        P, name="paxos-commit-faster-leader-crash", options={"faster": True},
        faults=(crash("a1", at_step=0), crash("coordinator", at_step=2)),
        description="Faster Paxos Commit with a1 down and the leader gone: the participants "
                    "cannot learn from one acceptor, ask, and a2 takes over and commits.",
    ),
)

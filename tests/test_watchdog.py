"""The one watchdog thread that ends outbound calls at their deadline (unit tests: the egress
tests show a trickling answer cut by it over real HTTP)."""

import threading

from connections.watchdog import Watchdog
from tests.support.waiting import wait_for


class Call:
    def __init__(self):
        self.done = False
        self.struck = threading.Event()

    def strike(self):
        self.struck.set()


def test_a_call_still_running_at_its_deadline_is_struck():
    call = Call()
    Watchdog().arm(0.05, call)
    wait_for(call.struck.is_set, every=0.01, message="never struck")


def test_a_call_that_finished_before_its_deadline_is_left_alone():
    dog, finished, running = Watchdog(), Call(), Call()
    dog.arm(0.05, finished)
    dog.arm(0.1, running)
    finished.done = True
    wait_for(running.struck.is_set, every=0.01, message="the later call was never struck")
    assert not finished.struck.is_set()


def test_a_nearer_deadline_armed_later_wakes_the_watchdog_sooner():
    dog, slow, quick = Watchdog(), Call(), Call()
    dog.arm(3600, slow)  # the thread now sleeps until this one...
    dog.arm(0.05, quick)  # ...unless told of a nearer one
    wait_for(quick.struck.is_set, timeout=5, every=0.01, message="slept past a deadline")
    assert not slow.struck.is_set()

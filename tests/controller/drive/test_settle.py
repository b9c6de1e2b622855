"""The link's settling rules, without sockets: events in, actions out (controller/drive/settle.py)."""

from abduce.controller.drive.settle import Flight, SendMeasure, SendQuery, Settle, Settler

ACK, HB = 2.0, 1.0  # ack timeout, heartbeat: a result is asked for after max(ACK, 5 HB) = 5 s


def settler_with(*flights: Flight, now: float = 0.0) -> tuple[Settler, list]:
    s = Settler(ACK, HB)
    sent = [a for f in flights for a in s.add(f, now)]
    return s, sent


def test_a_request_is_sent_once_and_re_sent_under_its_id_only_if_idempotent():
    s, sent = settler_with(Flight("a", "afm", idempotent=True), Flight("b", "afm", idempotent=False))
    assert sent == [SendMeasure("a"), SendMeasure("b")]
    assert s.tick(ACK - 0.1, {"afm"}) == []  # not yet
    assert s.tick(ACK + 0.1, {"afm"}) == [SendMeasure("a"), SendQuery("b")]  # never measure b twice
    assert s.tick(ACK + 0.2, {"afm"}) == []  # the clock restarted at the re-send


def test_an_acked_request_whose_result_is_late_is_asked_about_and_a_result_settles_it():
    s, _ = settler_with(Flight("a", "afm", idempotent=True))
    assert s.acked("a", 1.0) == []
    assert s.tick(1.0 + 4.9, {"afm"}) == []  # max(ACK, 5 HB) after the ack
    assert s.tick(1.0 + 5.1, {"afm"}) == [SendQuery("a")]
    assert s.result("a", "ok") == [Settle("a")] and s.flights == {}
    assert s.result("a", "ok") == []  # a duplicate result settles nothing twice


def test_a_failed_result_settles_with_its_status():
    s, _ = settler_with(Flight("a", "afm", idempotent=True))
    assert s.result("a", "failed", "stage jammed") == [Settle("a", "failed", "stage jammed")]


def test_nothing_times_out_while_the_agent_is_silent():
    s, _ = settler_with(Flight("a", "afm", idempotent=True), Flight("b", "xrd", idempotent=True))
    assert s.tick(100.0, reachable={"xrd"}) == [SendMeasure("b")]  # afm is silent: wait for it


def test_a_restarted_agent_is_asked_about_everything_in_flight_to_it():
    s, _ = settler_with(Flight("a", "afm", True), Flight("b", "afm", False), Flight("c", "xrd", True))
    assert s.restarted("afm", 3.0) == [SendQuery("a"), SendQuery("b")]
    # it does not know them: the idempotent one is measured, the other is lost, never re-sent
    assert s.rejected("a", "unknown-request", "never saw it", 3.5) == [SendMeasure("a")]
    assert s.rejected("b", "unknown-request", "never saw it", 3.5) == [
        Settle("b", "lost", "the restarted agent does not know this non-idempotent request")
    ]
    assert set(s.flights) == {"a", "c"} and not s.flights["a"].settling


def test_an_unknown_request_not_yet_acked_and_not_idempotent_is_queried_again_never_re_sent():
    s, _ = settler_with(Flight("b", "afm", idempotent=False))
    assert s.rejected("b", "unknown-request", "?", 1.0) == []
    assert s.tick(1.0 + ACK + 0.1, {"afm"}) == [SendQuery("b")]


def test_other_rejections_and_errors_that_are_not_retryable_settle_it():
    s, _ = settler_with(Flight("a", "afm", True), Flight("b", "afm", True), Flight("c", "afm", True))
    assert s.acked("a", 0.5) == []
    assert s.rejected("a", "unknown-request", "forgot", 1.0) == [Settle("a", "rejected:unknown-request", "forgot")]
    assert s.rejected("b", "out-of-limits", "x = 2 beyond 1", 1.0) == [
        Settle("b", "rejected:out-of-limits", "x = 2 beyond 1")
    ]
    assert s.agent_error("c", "busy", "try later", retryable=True) == []
    assert s.agent_error(None, "bad-message", "?", retryable=False) == []
    assert s.agent_error("c", "driver-crashed", "gone", retryable=False) == [Settle("c", "driver-crashed", "gone")]
    assert s.flights == {}


def test_what_was_queued_before_an_agent_registered_is_sent_when_it_does():
    s, _ = settler_with(Flight("a", "afm", True), Flight("late", "afm", True, acked=True, settling=True))
    assert s.registered("afm", 2.0) == [SendMeasure("a")]  # the one in flight before a restart is only queried
    assert s.registered("xrd", 2.0) == []


def test_a_request_in_flight_before_the_controller_restarted_is_queried_first():
    s, sent = settler_with(Flight("a", "afm", idempotent=True, acked=True, settling=True))
    assert sent == [SendQuery("a")]
    assert s.rejected("a", "unknown-request", "?", 1.0) == [SendMeasure("a")]  # never measured: measure it now

"""Poll one domain's queue and process its messages on a thread pool.

Each domain has one polling thread, WORKER_THREADS processing threads
and one housekeeping thread.  At most WORKER_THREADS + 20 messages are
held at once.  The polling thread receives only when ten places are
free, so under load one ReceiveMessage serves ten messages, and the next
batch arrives while ten received messages still wait for a thread.  The housekeeping thread
deletes finished messages in batches, extends the visibility of slow
ones and refreshes the queue depth.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from email_worker.aws.sqs import BATCH_LIMIT, DomainQueue, ReceivedMessage
from email_worker.config import Settings
from email_worker.errors import AwsError
from email_worker.health.state import DomainHealth
from email_worker.metrics.registry import WorkerMetrics
from email_worker.processor import DELETE, Disposition, MessageProcessor

log = logging.getLogger(__name__)

_HOUSEKEEPING_INTERVAL = 0.5
_DELETE_DELAY = 0.5
_ATTRIBUTE_INTERVAL = 30.0
_MAX_ERROR_BACKOFF = 60.0
_ERROR_LOG_INTERVAL = 60.0


class _Slots:
    """A counter of free places, taken a batch at a time."""

    def __init__(self, capacity: int) -> None:
        self._free = capacity
        self._condition = threading.Condition()

    def acquire(self, count: int, timeout: float) -> int:
        """Take ``count`` places, waiting up to ``timeout``; return 0 if not."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._free >= count,
                                            timeout):
                return 0
            self._free -= count
            return count

    def release(self, count: int) -> None:
        with self._condition:
            self._free += count
            self._condition.notify_all()


@dataclass
class _InFlight:
    message: ReceivedMessage
    received_at: float
    extended_at: float


class DomainPoller:
    """Receive, process and acknowledge the messages of one domain."""

    def __init__(self, domain: str, sqs_queue: DomainQueue,
                 processor: MessageProcessor, settings: Settings,
                 metrics: WorkerMetrics, health: DomainHealth,
                 stop: threading.Event) -> None:
        self.domain = domain
        self._queue = sqs_queue
        self._processor = processor
        self._settings = settings
        self._metrics = metrics
        self._health = health
        self._stop = stop
        self._slots = _Slots(settings.worker_threads + 2 * BATCH_LIMIT)
        self._work: queue.Queue[ReceivedMessage | None] = queue.Queue()
        self._lock = threading.Lock()
        self._in_flight: dict[str, _InFlight] = {}
        self._deletes: list[tuple[str, float]] = []
        self._has_dlq = False
        self._closed = threading.Event()
        self._last_error_log = 0.0
        self._poll_thread = threading.Thread(
            target=self._poll_loop, name=f"poll-{domain}", daemon=True)
        self._threads = [self._poll_thread, threading.Thread(
            target=self._housekeeping_loop, name=f"housekeeping-{domain}",
            daemon=True)]
        self._threads += [threading.Thread(
            target=self._work_loop, name=f"process-{domain}-{i}",
            daemon=True) for i in range(settings.worker_threads)]
        health.watch_thread(self._poll_thread.is_alive)

    @property
    def queue_url(self) -> str | None:
        return self._queue.url

    def is_alive(self) -> bool:
        return self._poll_thread.is_alive()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    # -- polling -----------------------------------------------------

    def _poll_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                if self._queue.url is None:
                    self._set_up_queue()
                self._receive_batch()
                failures = 0
            except AwsError as exc:
                failures += 1
                self._report_error(exc)
                self._stop.wait(min(_MAX_ERROR_BACKOFF, 2 ** failures))
            except Exception:  # noqa: BLE001 - the thread must survive
                log.exception("%s: unexpected error while polling",
                              self.domain)
                self._stop.wait(5)
        log.info("%s: stopped receiving", self.domain)

    def _set_up_queue(self) -> None:
        url = self._queue.resolve()
        self._refresh_attributes()
        log.info("%s: polling %s", self.domain, url)

    def _receive_batch(self) -> None:
        slots = self._acquire_slots()
        if not slots:
            return
        messages: list[ReceivedMessage] = []
        try:
            messages = self._queue.receive(
                slots, self._settings.poll_wait_seconds,
                self._settings.visibility_timeout)
        finally:
            self._slots.release(slots - len(messages))
        self._health.polled()
        self._metrics.last_poll.labels(domain=self.domain).set(time.time())
        if self._stop.is_set() and messages:
            self._release([m.receipt_handle for m in messages])
            self._slots.release(len(messages))
            return
        now = time.monotonic()
        for message in messages:
            with self._lock:
                self._in_flight[message.receipt_handle] = _InFlight(
                    message, now, now)
            self._work.put(message)

    def _acquire_slots(self) -> int:
        """Wait up to a second for room for a full batch; return its size."""
        return self._slots.acquire(BATCH_LIMIT, timeout=1.0)

    def _report_error(self, exc: AwsError) -> None:
        is_new = self._health.record_error(str(exc))
        now = time.monotonic()
        if is_new or now - self._last_error_log > _ERROR_LOG_INTERVAL:
            self._last_error_log = now
            log.error("%s: queue %s unavailable, retrying: %s",
                      self.domain, self._queue.queue_name, exc)

    # -- processing --------------------------------------------------

    def _work_loop(self) -> None:
        while True:
            message = self._work.get()
            if message is None:
                return
            if self._stop.is_set():
                # Shutting down: a message not yet started goes back to
                # the queue instead of delaying the exit.
                self._release([message.receipt_handle])
                with self._lock:
                    self._in_flight.pop(message.receipt_handle, None)
                self._slots.release(1)
                continue
            gauge = self._metrics.emails_in_flight.labels(domain=self.domain)
            gauge.inc()
            try:
                disposition = self._processor.process(
                    self.domain, message, self._has_dlq)
                self._settle(message, disposition)
            except Exception:  # noqa: BLE001 - the thread must survive
                log.exception("%s %s: unexpected error; the message will "
                              "be received again", message.message_id,
                              self.domain)
            finally:
                with self._lock:
                    self._in_flight.pop(message.receipt_handle, None)
                gauge.dec()
                self._slots.release(1)

    def _settle(self, message: ReceivedMessage,
                disposition: Disposition) -> None:
        handle = message.receipt_handle
        if disposition.action == DELETE:
            self._health.count(disposition.status)
            with self._lock:
                self._deletes.append((handle, time.monotonic()))
                flush = (len(self._deletes) >= BATCH_LIMIT
                         or len(self._in_flight) <= 1)
            if flush:
                self.flush_deletes()
            return
        try:
            self._queue.change_visibility([handle], disposition.delay)
        except AwsError as exc:
            log.warning("%s %s: could not set the retry delay; the message "
                        "returns after its visibility timeout: %s",
                        message.message_id, self.domain, exc)

    # -- housekeeping ------------------------------------------------

    def _housekeeping_loop(self) -> None:
        last_attributes = time.monotonic()
        while not self._closed.wait(_HOUSEKEEPING_INTERVAL):
            try:
                self.flush_deletes(older_than=_DELETE_DELAY)
                self._extend_visibility()
                if time.monotonic() - last_attributes > _ATTRIBUTE_INTERVAL:
                    last_attributes = time.monotonic()
                    if self._queue.url is not None:
                        self._refresh_attributes()
            except AwsError as exc:
                log.warning("%s: housekeeping call failed: %s",
                            self.domain, exc)
            except Exception:  # noqa: BLE001 - the thread must survive
                log.exception("%s: unexpected housekeeping error",
                              self.domain)

    def flush_deletes(self, older_than: float = 0.0) -> None:
        """Delete finished messages, at most 10 per request."""
        cutoff = time.monotonic() - older_than
        with self._lock:
            due = [h for h, finished in self._deletes if finished <= cutoff]
            due_set = set(due)
            self._deletes = [(h, t) for h, t in self._deletes
                             if h not in due_set]
        if not due:
            return
        try:
            failed = self._queue.delete(due)
        except AwsError as exc:
            log.warning("%s: deleting %d finished message(s) failed; they "
                        "will be received again and recognised as "
                        "processed: %s", self.domain, len(due), exc)
            return
        if failed:
            log.warning("%s: SQS did not delete %d finished message(s)",
                        self.domain, len(failed))

    def _extend_visibility(self) -> None:
        timeout = self._settings.visibility_timeout
        now = time.monotonic()
        with self._lock:
            due = [entry for entry in self._in_flight.values()
                   if now - entry.extended_at > timeout / 2]
            for entry in due:
                entry.extended_at = now
        if due:
            self._queue.change_visibility(
                [e.message.receipt_handle for e in due], timeout)
            log.info("%s: extended visibility of %d slow message(s)",
                     self.domain, len(due))

    def _refresh_attributes(self) -> None:
        attributes = self._queue.attributes()
        self._has_dlq = DomainQueue.redrive_target(attributes) is not None
        depth = attributes.get("ApproximateNumberOfMessages")
        if depth is not None:
            self._metrics.queue_messages.labels(domain=self.domain).set(
                int(depth))

    # -- shutdown ----------------------------------------------------

    def in_flight_count(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def wait_for_poll_thread(self, timeout: float) -> None:
        self._poll_thread.join(max(0.0, timeout))

    def close(self) -> None:
        """Delete finished messages and release unfinished ones."""
        self._closed.set()
        self.flush_deletes()
        with self._lock:
            unfinished = list(self._in_flight)
        if unfinished:
            log.warning("%s: releasing %d unfinished message(s) for "
                        "another worker", self.domain, len(unfinished))
            self._release(unfinished)
        for _ in range(self._settings.worker_threads):
            self._work.put(None)

    def _release(self, handles: list[str]) -> None:
        try:
            self._queue.change_visibility(handles, 0)
        except AwsError as exc:
            log.error("%s: could not release %d message(s); they return "
                      "after the visibility timeout: %s", self.domain,
                      len(handles), exc)

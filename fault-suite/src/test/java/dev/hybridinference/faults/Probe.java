package dev.hybridinference.faults;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.Cancellable;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.LogCapture;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.assertj.core.api.SoftAssertions;

/**
 * Runs calls the way the fault report needs them run and keeps the books of one test: every call goes
 * through a watchdog (a call that does not end in time is a hang; its thread is interrupted and left);
 * anything thrown that is not an {@link InferenceException} is untyped; every receipt and exception
 * (message, stack trace, receipt text, attempts' errors) and every log line is searched for the
 * configured secrets; and at the end the ledger is reconciled with the calls made and the receipts
 * returned. Figures go to the test class's report row as they happen; {@link #assertClean()} fails the
 * test when any is not zero.
 */
final class Probe implements AutoCloseable {
    /** How the ledger relates to the calls a test makes. */
    enum Accounting {
        /** No ledger to check. */
        NONE,
        /** Calls go straight to providers: one ledger record per call, costs equal to the receipts'. */
        DIRECT,
        /** Calls go through a composite client: the ledger's total equals the sum of the receipts' costs. */
        ROUTED
    }

    private static final AtomicInteger THREADS = new AtomicInteger();
    private static final ExecutorService WATCHDOG = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "fault-call-" + THREADS.incrementAndGet());
        t.setDaemon(true);
        return t;
    });

    private final FaultReport.Row row;
    private final List<String> secrets;
    private final LogCapture logs = LogCapture.start();
    private final List<Receipt> receipts = Collections.synchronizedList(new ArrayList<>());
    private final List<PushRecorder> pushes = Collections.synchronizedList(new ArrayList<>());
    private final List<String> findings = Collections.synchronizedList(new ArrayList<>());
    private final AtomicLong calls = new AtomicLong();
    private final AtomicLong sdkCalls = new AtomicLong();
    private final AtomicLong hangs = new AtomicLong();
    private final AtomicLong untyped = new AtomicLong();
    private final AtomicLong lost = new AtomicLong();
    private final AtomicLong doubled = new AtomicLong();
    private final AtomicLong leaks = new AtomicLong();
    private final AtomicLong extraTerminals = new AtomicLong();
    private CostLedger ledger;
    private Accounting accounting = Accounting.NONE;
    private long ledgerCallsBefore;
    private BigDecimal ledgerTotalBefore = BigDecimal.ZERO;
    private long expectedRecords = -1;
    private boolean reconciled;
    private boolean closed;

    Probe(FaultReport.Row row, List<String> secrets) {
        this.row = row;
        this.secrets = List.copyOf(secrets);
    }

    /** The ledger to reconcile at the end, and how. */
    Probe ledger(CostLedger ledger, Accounting accounting) {
        this.ledger = ledger;
        this.accounting = accounting;
        this.ledgerCallsBefore = ledger.totals().calls();
        this.ledgerTotalBefore = ledger.total();
        return this;
    }

    /** Overrides how many ledger records {@link Accounting#DIRECT} expects (by default one per call). */
    Probe expectRecords(long records) {
        this.expectedRecords = records;
        return this;
    }

    /** The outcome of one call. */
    record Outcome<T>(T value, Throwable error, boolean hung, Duration took) {
        boolean ok() {
            return !hung && error == null;
        }

        /** The call's InferenceException, or null when it ended otherwise. */
        InferenceException failure() {
            return error instanceof InferenceException ? (InferenceException) error : null;
        }

        /** How it ended, in a few words, for assertion messages. */
        String describe() {
            if (hung) {
                return "hung (no end within the limit)";
            }
            if (error != null) {
                return error.getClass().getSimpleName() + ": " + error.getMessage();
            }
            return "succeeded";
        }
    }

    /** What a pulled stream delivered before it ended or failed. */
    static final class Streamed {
        final StringBuilder text = new StringBuilder();
        volatile int chunks;
        volatile ChatResponse response;
    }

    /** Runs {@code body} under the watchdog; counts it as a call. */
    <T> Outcome<T> run(String what, Duration limit, Callable<T> body) {
        return run(what, limit, InferenceException.class, body);
    }

    /**
     * Runs {@code body} under the watchdog; counts it as a call. A throwable of type {@code typed} is the
     * expected kind of failure (an {@link InferenceException} is inspected for its receipt); anything else
     * thrown is untyped.
     */
    <T> Outcome<T> run(String what, Duration limit, Class<? extends Throwable> typed, Callable<T> body) {
        calls.incrementAndGet();
        row.calls.incrementAndGet();
        long start = System.nanoTime();
        Future<T> f = WATCHDOG.submit(body);
        try {
            T value = f.get(limit.toNanos(), TimeUnit.NANOSECONDS);
            return new Outcome<>(value, null, false, since(start));
        } catch (TimeoutException e) {
            f.cancel(true);
            hang(what + ": no end within " + limit.toMillis() + " ms");
            return new Outcome<>(null, null, true, since(start));
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (typed.isInstance(cause) && !(cause instanceof InferenceException)) {
                scan(what + " exception", cause);
            } else {
                thrown(what, cause);
            }
            return new Outcome<>(null, cause, false, since(start));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    /** A blocking chat call. */
    Outcome<ChatResponse> chat(InferenceClient client, ChatRequest request, Duration limit) {
        sdkCalls.incrementAndGet();
        Outcome<ChatResponse> o = run("chat", limit, () -> client.chat(request));
        if (o.ok()) {
            receipt("response receipt", o.value().receipt());
        }
        return o;
    }

    /** A pulled stream read to its end (or its failure); the value holds what arrived either way. */
    Outcome<Streamed> stream(InferenceClient client, ChatRequest request, Duration limit) {
        sdkCalls.incrementAndGet();
        Streamed s = new Streamed();
        Outcome<Streamed> o = run("stream", limit, () -> {
            ChatStream stream = client.stream(request);
            try {
                for (ChatChunk c : stream) {
                    s.text.append(c.text());
                    s.chunks++;
                }
                s.response = stream.response();
            } catch (RuntimeException | Error e) {
                // Not try-with-resources: after an OutOfMemoryError, close() may throw that same error again.
                try {
                    stream.close();
                } catch (RuntimeException | Error again) {
                    if (again != e) {
                        e.addSuppressed(again);
                    }
                }
                throw e;
            }
            stream.close();
            return s;
        });
        if (o.ok()) {
            receipt("stream receipt", s.response.receipt());
        }
        return new Outcome<>(s, o.error(), o.hung(), o.took());
    }

    /**
     * A pushed stream: starts it, hands its handle to {@code during} (which may cancel it at once or later,
     * from any thread), then waits up to {@code limit} for its terminal callback. No terminal callback in
     * time is a hang; a second one is counted when the probe closes.
     */
    PushRecorder push(InferenceClient client, ChatRequest request, Duration limit, Consumer<Cancellable> during) {
        PushRecorder p = startPush(client, request);
        if (during != null && p.handle != null) {
            during.accept(p.handle);
        }
        finishPush(p, limit);
        return p;
    }

    /** A push stream left to end by itself. */
    PushRecorder push(InferenceClient client, ChatRequest request, Duration limit) {
        return push(client, request, limit, null);
    }

    /** Starts a pushed stream and returns at once; {@link #finishPush} waits for its end. */
    PushRecorder startPush(InferenceClient client, ChatRequest request) {
        calls.incrementAndGet();
        sdkCalls.incrementAndGet();
        row.calls.incrementAndGet();
        PushRecorder p = new PushRecorder();
        pushes.add(p);
        try {
            p.handle = client.stream(request, p);
        } catch (RuntimeException | Error e) {
            thrown("push stream start", e);
            p.startFailure = e;
        }
        return p;
    }

    /** Waits up to {@code limit} for a started push stream's terminal callback and inspects it. */
    void finishPush(PushRecorder p, Duration limit) {
        if (p.startFailure != null) {
            return;
        }
        if (!p.await(limit)) {
            hang("push stream: no onComplete/onError within " + limit.toMillis() + " ms");
            p.hung = true;
            return;
        }
        if (p.error() != null) {
            inferenceFailure("push onError", p.error());
        } else if (p.response() != null) {
            receipt("push receipt", p.response().receipt());
        }
    }

    /** Waits for several started push streams, all within one {@code limit}. */
    void finishPushes(List<PushRecorder> started, Duration limit) {
        long deadline = System.nanoTime() + limit.toNanos();
        for (PushRecorder p : started) {
            finishPush(p, Duration.ofNanos(Math.max(1, deadline - System.nanoTime())));
        }
    }

    /**
     * Books calls made in another JVM from the {@code key=value} result it reported: {@code calls}, {@code
     * records} (ledger records), and for the call and the ordinary call after it ({@code after.} prefix)
     * {@code outcome} (ok or the class thrown), {@code typed}, {@code receipt} and {@code leak}. A missing
     * result is a hang.
     */
    void external(String what, Map<String, String> r) {
        if (r == null) {
            calls.incrementAndGet();
            row.calls.incrementAndGet();
            hang(what + ": no result from its JVM");
            return;
        }
        long n = Long.parseLong(r.getOrDefault("calls", "0"));
        calls.addAndGet(n);
        row.calls.addAndGet(n);
        for (String prefix : new String[] {"", "after."}) {
            String outcome = r.get(prefix + "outcome");
            if (outcome == null || outcome.equals("ok")) {
                continue;
            }
            String call = what + (prefix.isEmpty() ? "" : ", the call after");
            if (!"true".equals(r.get(prefix + "typed"))) {
                count(
                        untyped,
                        row.untyped,
                        1,
                        "untyped " + simpleName(outcome) + " from " + call + ": "
                                + abbreviate(r.getOrDefault(prefix + "message", "")));
            } else if (!"true".equals(r.get(prefix + "receipt"))) {
                count(
                        lost,
                        row.lost,
                        1,
                        "receipt lost: " + simpleName(outcome) + " without a partial receipt (" + call + ")");
            }
            if ("true".equals(r.get(prefix + "leak"))) {
                count(leaks, row.secrets, 1, "secret in " + call + " exception");
            }
        }
        long records = Long.parseLong(r.getOrDefault("records", "0"));
        if (records < n) {
            count(lost, row.lost, n - records, what + ": ledger has " + records + " records for " + n + " calls");
        } else if (records > n) {
            count(doubled, row.doubled, records - n, what + ": ledger has " + records + " records for " + n + " calls");
        }
    }

    private static String simpleName(String className) {
        return className.substring(className.lastIndexOf('.') + 1);
    }

    /** Records what a call threw: an InferenceException is inspected, anything else is untyped. */
    void thrown(String what, Throwable t) {
        if (t instanceof InferenceException) {
            inferenceFailure(what, (InferenceException) t);
            return;
        }
        untyped.incrementAndGet();
        row.untyped.incrementAndGet();
        String f = "untyped " + t.getClass().getSimpleName() + " from " + what
                + (t.getMessage() == null ? "" : ": " + abbreviate(t.getMessage()));
        findings.add(f);
        row.finding(f);
        scan("untyped exception from " + what, stackTrace(t));
    }

    private void inferenceFailure(String what, InferenceException e) {
        scan(what + " exception", stackTrace(e));
        if (e.partialReceipt().isPresent()) {
            receipt(what + " partial receipt", e.partialReceipt().get());
        } else {
            lost.incrementAndGet();
            row.lost.incrementAndGet();
            String f = "receipt lost: " + e.getClass().getSimpleName() + " without a partial receipt (" + what + ")";
            findings.add(f);
            row.finding(f);
        }
    }

    /** Searches a receipt's text for secrets and keeps it for the ledger check. */
    void receipt(String where, Receipt r) {
        receipts.add(r);
        scan(where + " toString", r.toString());
        scan(where + " summary", r.summary());
        for (Attempt a : r.attempts()) {
            scan(where + " attempt", String.valueOf(a.error()) + " " + a.endpoint() + " " + a.reason());
        }
    }

    /** Searches any text the SDK produced for the secrets. */
    void scan(String where, String text) {
        if (text == null) {
            return;
        }
        for (String s : secrets) {
            if (text.contains(s)) {
                leaks.incrementAndGet();
                row.secrets.incrementAndGet();
                String f = "secret in " + where;
                findings.add(f);
                row.finding(f);
                return;
            }
        }
    }

    /** Searches an exception's whole text: messages, causes, suppressed exceptions and stack traces. */
    void scan(String where, Throwable t) {
        scan(where, stackTrace(t));
    }

    private void hang(String what) {
        hangs.incrementAndGet();
        row.hangs.incrementAndGet();
        findings.add("hang: " + what);
        row.finding("hang: " + what);
    }

    /** The receipts seen so far (responses' and failures' partial ones). */
    List<Receipt> receipts() {
        synchronized (receipts) {
            return List.copyOf(receipts);
        }
    }

    /** The log lines captured so far. */
    LogCapture logs() {
        return logs;
    }

    /**
     * Waits for late receipts (a closed stream records from the closing thread), then compares the ledger
     * with the calls made and the receipts returned. Idempotent.
     */
    void reconcile() {
        if (reconciled) {
            return;
        }
        reconciled = true;
        for (PushRecorder p : pushes) {
            if (p.terminals() > 1) {
                extraTerminals.incrementAndGet();
                String f = "push stream got " + p.terminals() + " terminal callbacks";
                findings.add(f);
                row.finding(f);
            }
        }
        if (ledger == null || accounting == Accounting.NONE) {
            return;
        }
        long expected = expectedRecords >= 0 ? expectedRecords : sdkCalls.get();
        long deadline = System.nanoTime() + Duration.ofSeconds(2).toNanos();
        while (accounting == Accounting.DIRECT && recorded() < expected && System.nanoTime() < deadline) {
            sleep(20);
        }
        BigDecimal sum = BigDecimal.ZERO;
        for (Receipt r : receipts()) {
            sum = sum.add(r.cost());
        }
        BigDecimal inLedger = ledger.total().subtract(ledgerTotalBefore);
        if (accounting == Accounting.DIRECT) {
            long got = recorded();
            if (got < expected) {
                count(lost, row.lost, expected - got, "ledger has " + got + " records for " + expected + " calls");
            } else if (got > expected) {
                count(
                        doubled,
                        row.doubled,
                        got - expected,
                        "ledger has " + got + " records for " + expected + " calls");
            }
        }
        if (lost.get() == 0 && inLedger.compareTo(sum) != 0) {
            String f = "ledger total " + inLedger.toPlainString() + " but receipts sum to " + sum.toPlainString();
            if (inLedger.compareTo(sum) < 0) {
                count(lost, row.lost, 1, f);
            } else {
                count(doubled, row.doubled, 1, f);
            }
        }
    }

    private long recorded() {
        return ledger.totals().calls() - ledgerCallsBefore;
    }

    private void count(AtomicLong mine, AtomicLong rows, long n, String finding) {
        mine.addAndGet(n);
        rows.addAndGet(n);
        findings.add(finding);
        row.finding(finding);
    }

    /** Reconciles (if not yet done), scans the captured log lines and stops capturing. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        reconcile();
        List<String> lines = logs.lines();
        logs.close();
        for (String line : lines) {
            scan("log line", line);
        }
    }

    /** Fails unless this test saw no hang, untyped exception, lost or doubled receipt, leak or extra callback. */
    void assertClean() {
        close();
        SoftAssertions soft = new SoftAssertions();
        String seen = String.join("; ", findings());
        soft.assertThat(hangs.get()).as("hangs (%s)", seen).isZero();
        soft.assertThat(untyped.get()).as("untyped exceptions (%s)", seen).isZero();
        soft.assertThat(lost.get()).as("receipts lost (%s)", seen).isZero();
        soft.assertThat(doubled.get()).as("receipts double-counted (%s)", seen).isZero();
        soft.assertThat(leaks.get()).as("secrets found (%s)", seen).isZero();
        soft.assertThat(extraTerminals.get())
                .as("extra terminal callbacks (%s)", seen)
                .isZero();
        soft.assertAll();
    }

    List<String> findings() {
        synchronized (findings) {
            return List.copyOf(findings);
        }
    }

    long hangs() {
        return hangs.get();
    }

    long untyped() {
        return untyped.get();
    }

    static String stackTrace(Throwable t) {
        StringWriter w = new StringWriter();
        try (PrintWriter p = new PrintWriter(w)) {
            t.printStackTrace(p);
        }
        return w.toString();
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    private static Duration since(long start) {
        return Duration.ofNanos(System.nanoTime() - start);
    }

    private static String abbreviate(String s) {
        String one = s.replace('\n', ' ');
        return one.length() > 160 ? one.substring(0, 160) + "..." : one;
    }
}

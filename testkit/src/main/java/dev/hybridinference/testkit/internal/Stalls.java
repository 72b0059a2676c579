package dev.hybridinference.testkit.internal;

import java.io.IOException;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What the emulators count of requests they hold and of clients that leave: stalls begun, stalls held now,
 * and disconnects (a stall the client gave up on, an answer whose write failed), none counted once the server
 * itself is closing. Thread-safe.
 */
public final class Stalls {
    private final LoopbackHttp http;
    private final AtomicLong started = new AtomicLong();
    private final AtomicInteger now = new AtomicInteger();
    private final AtomicLong disconnects = new AtomicLong();

    /** Counts for the requests of {@code http}. */
    public Stalls(LoopbackHttp http) {
        this.http = http;
    }

    /**
     * Holds a request until its client goes away or the server closes, answering nothing, or only a status
     * and headers when {@code headers} is given (a stream that never sends an event).
     *
     * @param status the status sent with {@code headers}
     * @param headers the response headers to send first, or null to send nothing
     */
    public void hold(LoopbackHttp.Exchange ex, int status, Map<String, String> headers) {
        started.incrementAndGet();
        now.incrementAndGet();
        try {
            if (headers != null) {
                ex.startChunked(status, headers);
            }
            ex.awaitClientGone();
            countDisconnect();
        } catch (IOException e) {
            countDisconnect();
        } finally {
            now.decrementAndGet();
            ex.abort();
        }
    }

    /**
     * Holds a request like {@link #hold}, but sends {@code status} and {@code headers} at once (a chunked body)
     * and then {@code keepAlive} as a chunk every {@code every}, until a write fails because the client went away
     * (which a write notices within about two periods) or the server closes. For servers whose stalled answers
     * keep the connection busy, as a proxy's keep-alive comments do.
     *
     * @param status the status sent first
     * @param headers the response headers sent first
     * @param keepAlive the bytes written each period
     * @param every the period
     */
    public void holdWithKeepAlive(
            LoopbackHttp.Exchange ex, int status, Map<String, String> headers, byte[] keepAlive, Duration every) {
        started.incrementAndGet();
        now.incrementAndGet();
        try {
            ex.startChunked(status, headers);
            while (true) {
                try {
                    TimeUnit.NANOSECONDS.sleep(every.toNanos());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return; // the server is closing
                }
                ex.writeChunk(keepAlive);
            }
        } catch (IOException e) {
            countDisconnect();
        } finally {
            now.decrementAndGet();
            ex.abort();
        }
    }

    /** The client went away while the request was answered: counted, and the exchange dropped. */
    public void clientGone(LoopbackHttp.Exchange ex) {
        countDisconnect();
        ex.abort();
    }

    private void countDisconnect() {
        if (!http.closed()) {
            disconnects.incrementAndGet();
        }
    }

    /** Requests held so far. */
    public long started() {
        return started.get();
    }

    /** Requests held now. */
    public int now() {
        return now.get();
    }

    /** Clients that went away first. */
    public long disconnects() {
        return disconnects.get();
    }
}

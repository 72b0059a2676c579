package dev.hybridinference.ledger;

import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.spi.Secrets;
import dev.hybridinference.ledger.internal.Database;
import dev.hybridinference.ledger.internal.Migrations;
import dev.hybridinference.ledger.internal.ReceiptStore;
import dev.hybridinference.ledger.internal.SettingException;
import dev.hybridinference.ledger.internal.SpendEntry;
import dev.hybridinference.ledger.internal.Spool;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.sql.BatchUpdateException;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A durable spend log: every receipt of a composite client's calls (completed calls, and the partial
 * receipts of failed ones) appended to a database through JDBC, where totals by provider, model, tag and
 * time window are a query away ({@link #totals()}, {@link SpendTotals}, {@link SpendReport}).
 *
 * <pre>{@code
 * JdbcSpendLog log = JdbcSpendLog.builder()
 *         .url("jdbc:postgresql://db.internal:5432/spend")
 *         .user("spend").password(System.getenv("SPEND_DB_PASSWORD"))
 *         .build();
 * HybridClient client = HybridClient.builder().member("main", vllm).listener(log).onClose(log).build();
 * }</pre>
 *
 * <p>In configuration: a top-level {@code ledger: {type: jdbc, url: ...}} section (see {@link
 * JdbcSpendLogFactory}); the client built from it closes the log.
 *
 * <h2>What it guarantees</h2>
 *
 * <ul>
 *   <li><b>Callers never wait on the database.</b> A receipt goes into a bounded in-memory queue; one
 *       background thread writes the queue in batches ({@link Builder#batchSize}, at least every {@link
 *       Builder#flushInterval}). When the queue is full, the receipt is appended to the spool file on the
 *       caller's thread instead: a local file write, never blocked by the database and never dropped.
 *   <li><b>Nothing is lost while the database is down.</b> Batches that cannot be written go to an
 *       append-only spool file in {@link Builder#spoolDirectory} (one JSON line per receipt, forced to disk
 *       once per batch). The writer tries the database again every {@link Builder#reconnectInterval}, and
 *       when it answers, replays the spool into it before deleting it.
 *   <li><b>Nothing is written twice.</b> The receipt's {@link Receipt#id() id} is the table's primary key
 *       and every insert is an insert-if-absent ({@code ON CONFLICT DO NOTHING} on PostgreSQL, {@code MERGE
 *       ... WHEN NOT MATCHED} on H2), so a replay of receipts that did reach the database changes nothing.
 *   <li><b>Money is exact.</b> Costs are stored as exact decimals at any scale ({@code NUMERIC} without a
 *       precision on PostgreSQL, {@code DECFLOAT} on H2) and summed by the database exactly.
 *   <li><b>Close is bounded.</b> {@link #close()} writes the queue and the spool to the database when it
 *       answers, within {@link Builder#closeTimeout}; what cannot be written by then is in the spool, and
 *       the next spend log started on that directory writes it. It returns (and logs) what was left.
 * </ul>
 *
 * <p>A receipt the database refuses for what it holds (a constraint the data breaks) is not retried forever:
 * it is kept in the spool directory's {@code rejected.jsonl} and logged. Other failures (the server gone, a
 * table missing, a timeout) count as the database being down.
 *
 * <h2>The tables</h2>
 *
 * <p>{@code <prefix>receipts} holds one row per receipt (id, start time, provider, deployment kind, model,
 * route and the route facts tier, spilled over and fell back as columns, attempts, outcome, times in
 * microseconds, cold start, tokens, bytes, the exact cost, the session); {@code <prefix>receipt_tags} the
 * tags as {@code (receipt_id, tag_key, tag_value)} rows, so that totals by tag are plain SQL; {@code
 * <prefix>receipt_attributes} the attributes the same way. The schema is created and migrated by versioned
 * scripts shipped in this module, recorded in {@code <prefix>schema_version}; several instances starting at
 * once migrate it once.
 *
 * <p>An H2 database ({@link #DEFAULT_URL}, a file next to the application) needs no server; PostgreSQL
 * suits a fleet of instances writing to one log (add the PostgreSQL driver to the application).
 *
 * <p>Thread-safe: the listener methods and {@link #append} may be called from any number of threads.
 */
public final class JdbcSpendLog implements InferenceListener, AutoCloseable {
    /** The embedded default: an H2 database in the file {@code hybrid-spend.mv.db} of the working directory. */
    public static final String DEFAULT_URL = "jdbc:h2:./hybrid-spend";

    /** The default start of the table names: {@code spend_receipts}, {@code spend_receipt_tags}... */
    public static final String DEFAULT_TABLE_PREFIX = "spend_";

    /** Receipts the queue holds by default before they go straight to the spool. */
    public static final int DEFAULT_QUEUE_CAPACITY = 10_000;

    /** Receipts written in one batch by default. */
    public static final int DEFAULT_BATCH_SIZE = 200;

    /** How long a receipt waits for its batch to fill by default. */
    public static final Duration DEFAULT_FLUSH_INTERVAL = Duration.ofMillis(500);

    /** The default spool directory, {@code hybrid-spend-spool} in the working directory. */
    public static final Path DEFAULT_SPOOL_DIRECTORY = Path.of("hybrid-spend-spool");

    /** How long {@link #close()} waits for the database by default. */
    public static final Duration DEFAULT_CLOSE_TIMEOUT = Duration.ofSeconds(10);

    /** How often the database is tried again while it is down, by default. */
    public static final Duration DEFAULT_RECONNECT_INTERVAL = Duration.ofSeconds(5);

    private static final Logger LOG = LoggerFactory.getLogger(JdbcSpendLog.class);

    /** Put in the queue to wake the writer when the log closes; never written. */
    private static final SpendEntry WAKE = SpendEntry.of(
            Receipt.builder()
                    .id("wake")
                    .providerId("-")
                    .deploymentKind(DeploymentKind.LOCAL)
                    .startedAt(Instant.EPOCH)
                    .build(),
            null,
            Instant.EPOCH);

    private final Database db;
    private final ReceiptStore store;
    private final Spool spool;
    private final ArrayBlockingQueue<SpendEntry> queue;
    private final int batchSize;
    private final long flushNanos;
    private final long reconnectNanos;
    private final Duration closeTimeout;
    private final Clock clock;
    private final Thread writer;
    private final Thread shutdownHook;

    /** Callers hold it shared while they queue; close holds it alone to stop the queueing. */
    private final ReentrantReadWriteLock lifecycle = new ReentrantReadWriteLock();

    private boolean closed; // guarded by lifecycle
    private volatile boolean closing;
    private volatile boolean abandoned;
    private final CountDownLatch closeDone = new CountDownLatch(1);

    /**
     * The batch the writer is writing: whoever takes it out (the writer on failure, close on a timeout)
     * spools it, so that a writer stuck on a dead connection cannot take its batch down with it.
     */
    private final AtomicReference<List<SpendEntry>> inFlight = new AtomicReference<>();

    private final LongAdder received = new LongAdder();
    private final LongAdder stored = new LongAdder();
    private final LongAdder lost = new LongAdder();
    private final AtomicBoolean warnedFull = new AtomicBoolean();
    private final AtomicBoolean warnedClosed = new AtomicBoolean();
    private volatile boolean reachable;
    private volatile String lastError;

    // The writer thread's own state.
    private Connection connection;
    private boolean migrated;
    private boolean down;
    private long nextTry;
    private boolean finalTryUsed;

    private JdbcSpendLog(Builder b, Database db, Spool spool) {
        this.db = db;
        this.store = new ReceiptStore(db);
        this.spool = spool;
        this.queue = new ArrayBlockingQueue<>(b.queueCapacity + 1); // one more for the wake-up
        this.batchSize = b.batchSize;
        this.flushNanos = b.flushInterval.toNanos();
        this.reconnectNanos = b.reconnectInterval.toNanos();
        this.closeTimeout = b.closeTimeout;
        this.clock = b.clock;
        this.writer = new Thread(this::runWriter, "hybrid-inference-spend-log-" + db.prefix());
        this.writer.setDaemon(true);
        this.shutdownHook = new Thread(this::close, "hybrid-inference-spend-log-shutdown");
    }

    /** A builder with every setting at its default. */
    public static Builder builder() {
        return new Builder();
    }

    /** Records the receipt of a call that answered. */
    @Override
    public void onCompleted(Call call, Receipt receipt) {
        record(receipt, null);
    }

    /** Records the partial receipt of a call that failed, when it has one. */
    @Override
    public void onFailed(Call call, InferenceException error) {
        error.partialReceipt().ifPresent(r -> record(r, error));
    }

    /**
     * Records a receipt that did not come through a composite client's listeners (a provider used alone, a
     * receipt from elsewhere). Returns at once, as the listener methods do.
     */
    public void append(Receipt receipt) {
        record(Objects.requireNonNull(receipt, "receipt"), null);
    }

    /**
     * Records a failed call's receipt with its failure.
     *
     * @param receipt the receipt of what the call did
     * @param failure why it failed; its class's simple name is stored
     */
    public void append(Receipt receipt, InferenceException failure) {
        record(Objects.requireNonNull(receipt, "receipt"), failure);
    }

    private void record(Receipt receipt, InferenceException failure) {
        SpendEntry entry = SpendEntry.of(receipt, failure, clock.instant());
        received.increment();
        boolean isClosed;
        lifecycle.readLock().lock();
        try {
            isClosed = closed;
            if (!isClosed && queue.remainingCapacity() > 1 && queue.offer(entry)) {
                return;
            }
        } finally {
            lifecycle.readLock().unlock();
        }
        if (isClosed) {
            if (warnedClosed.compareAndSet(false, true)) {
                LOG.warn(
                        "the spend log on {} is closed; receipts that still come (receipt {} first) go to the spool {}",
                        db,
                        entry.id(),
                        spool.directory());
            }
        } else if (warnedFull.compareAndSet(false, true)) {
            LOG.warn(
                    "the spend log's queue is full; receipts go straight to the spool {} until it drains",
                    spool.directory());
        }
        spoolNow(List.of(entry));
    }

    /** Where the log stands now. */
    public Status status() {
        List<SpendEntry> batch = inFlight.get();
        long queued = queue.size() - (queue.contains(WAKE) ? 1 : 0) + (batch == null ? 0 : batch.size());
        boolean isClosed;
        lifecycle.readLock().lock();
        try {
            isClosed = closed;
        } finally {
            lifecycle.readLock().unlock();
        }
        return new Status(
                received.sum(),
                stored.sum(),
                Math.max(0, queued),
                spool.pending(),
                spool.rejected(),
                lost.sum(),
                reachable,
                isClosed && closeDone.getCount() == 0,
                Optional.ofNullable(lastError));
    }

    /** Queries over this log's tables, on their own connections. */
    public SpendTotals totals() {
        return new SpendTotals(db);
    }

    /** The spool directory. */
    public Path spoolDirectory() {
        return spool.directory();
    }

    /** Closes the log within {@link Builder#closeTimeout}; see {@link #close(Duration)}. */
    @Override
    public void close() {
        close(closeTimeout);
    }

    /**
     * Stops taking receipts into the queue, writes the queue and the spool to the database if it answers,
     * and stops the writer, waiting at most {@code timeout}. Receipts the database has not confirmed by then
     * are in the spool, forced to disk; a warning says how many and where. Receipts that arrive after close
     * go straight to the spool. Calling it again waits for the first close and returns the status.
     *
     * @return the status after closing: {@link Status#spooled()} is what was left in the spool
     */
    public Status close(Duration timeout) {
        Objects.requireNonNull(timeout, "timeout");
        boolean first;
        lifecycle.writeLock().lock();
        try {
            first = !closed;
            closed = true;
        } finally {
            lifecycle.writeLock().unlock();
        }
        if (!first) {
            awaitQuietly(closeDone, timeout);
            return status();
        }
        try {
            closing = true;
            queue.offer(WAKE);
            boolean finished = joinQuietly(writer, timeout);
            if (!finished) {
                abandoned = true;
            }
            // What the writer did not finish (all of it when it is stuck on the database, nothing otherwise).
            List<SpendEntry> left = new ArrayList<>();
            List<SpendEntry> batch = inFlight.getAndSet(null);
            if (batch != null) {
                left.addAll(batch);
            }
            for (SpendEntry e; (e = queue.poll()) != null; ) {
                if (e != WAKE) {
                    left.add(e);
                }
            }
            spoolNow(left);
            if (!finished) {
                LOG.warn(
                        "the spend log's database {} did not finish within {}; {} receipts it had not confirmed went"
                                + " to the spool",
                        db,
                        timeout,
                        left.size());
            }
            removeShutdownHook();
        } finally {
            spool.close();
            closeDone.countDown();
        }
        Status s = status();
        if (s.spooled() > 0) {
            LOG.warn(
                    "the spend log closed with {} receipts in the spool {}: the next spend log started on that"
                            + " directory writes them to {}",
                    s.spooled(),
                    spool.directory(),
                    db);
        }
        if (s.lost() > 0) {
            LOG.error("the spend log lost {} receipts that neither the database nor the spool could take", s.lost());
        }
        return s;
    }

    @Override
    public String toString() {
        return "JdbcSpendLog[" + db + ", spool " + spool.directory() + "]";
    }

    // ---- the writer ---------------------------------------------------------------------------

    private void runWriter() {
        List<SpendEntry> batch = new ArrayList<>(batchSize);
        try {
            while (!abandoned) {
                boolean last = closing;
                try {
                    collect(batch, last);
                } catch (InterruptedException e) {
                    // Nothing here interrupts the writer; whatever did, the receipts still need writing.
                }
                if (!batch.isEmpty()) {
                    deliver(List.copyOf(batch), last);
                    batch.clear();
                }
                if (!abandoned && spool.pending() > 0 && mayTry(last)) {
                    replay();
                }
                if (last && queue.isEmpty()) {
                    break;
                }
            }
        } catch (RuntimeException | Error e) {
            // What is still queued is spooled by close; what this thread held, now.
            LOG.error("the spend log's writer failed; receipts go to the spool until the log closes", e);
            spoolNow(new ArrayList<>(batch));
            throw e;
        } finally {
            disconnect();
        }
    }

    /** Takes a batch: waits up to the flush interval for a first receipt, then for the batch to fill. */
    private void collect(List<SpendEntry> batch, boolean last) throws InterruptedException {
        SpendEntry e = last ? queue.poll() : queue.poll(flushNanos, TimeUnit.NANOSECONDS);
        long deadline = System.nanoTime() + flushNanos;
        while (e != null) {
            if (e != WAKE) {
                batch.add(e);
                if (batch.size() >= batchSize) {
                    return;
                }
            }
            e = queue.poll();
            if (e == null && !closing) {
                long left = deadline - System.nanoTime();
                if (left > 0) {
                    e = queue.poll(left, TimeUnit.NANOSECONDS);
                }
            }
        }
    }

    /** Whether to use the database now: it is up, it is time to try it again, or it gets one last try at close. */
    private boolean mayTry(boolean last) {
        return !down || System.nanoTime() - nextTry >= 0 || (last && !finalTryUsed);
    }

    private void deliver(List<SpendEntry> batch, boolean last) {
        inFlight.set(batch);
        if (mayTry(last)) {
            boolean reused = connection != null;
            try {
                stored.add(write(connect(), batch));
                inFlight.compareAndSet(batch, null);
                return;
            } catch (DatabaseDown d) {
                if (!reused || abandoned) {
                    markDown(d.getCause());
                } else {
                    // A connection kept open between batches may have been closed by the server (an idle
                    // timeout, a restart long over): one more try on a new one before calling the database down.
                    disconnect();
                    try {
                        stored.add(write(connect(), batch));
                        inFlight.compareAndSet(batch, null);
                        return;
                    } catch (DatabaseDown again) {
                        markDown(again.getCause());
                    }
                }
            }
        }
        if (inFlight.compareAndSet(batch, null)) {
            spoolNow(batch);
        }
    }

    /** Writes the spool's files to the database, oldest first, deleting each once it is in. */
    private void replay() {
        List<Path> files;
        try {
            files = spool.takeForReplay();
        } catch (IOException e) {
            LOG.error("cannot read the spool {}: {}", spool.directory(), e.toString());
            return;
        }
        for (Path file : files) {
            if (abandoned) {
                return;
            }
            long lines = 0;
            try (BufferedReader r = Spool.reader(file)) {
                Connection c = connect();
                List<SpendEntry> chunk = new ArrayList<>(batchSize);
                for (String line = r.readLine(); line != null; line = r.readLine()) {
                    if (line.isBlank()) {
                        continue;
                    }
                    lines++;
                    try {
                        chunk.add(SpendEntry.fromJson(line));
                    } catch (IllegalArgumentException bad) {
                        rejectQuietly(line, "not a receipt: " + bad.getMessage());
                        continue;
                    }
                    if (chunk.size() == batchSize) {
                        stored.add(write(c, chunk));
                        chunk.clear();
                    }
                }
                if (!chunk.isEmpty()) {
                    stored.add(write(c, chunk));
                }
                spool.replayed(file, lines);
                LOG.debug("replayed {} spooled receipts from {} into {}", lines, file.getFileName(), db);
            } catch (DatabaseDown d) {
                markDown(d.getCause());
                return;
            } catch (IOException e) {
                LOG.error("cannot replay the spool file {}: {}", file, e.toString());
                return;
            }
        }
    }

    /**
     * Writes entries, returning how many are now in the database. A batch the database refuses for its data
     * is written one entry at a time, and the entries it still refuses are rejected.
     *
     * @throws DatabaseDown when the database cannot take them for any other reason
     */
    private int write(Connection c, List<SpendEntry> entries) {
        try {
            store.insert(c, entries);
            markUp();
            return entries.size();
        } catch (SQLException e) {
            rollback(c);
            if (!isDataError(e) || !isValid(c)) {
                throw new DatabaseDown(e);
            }
        }
        int written = 0;
        for (SpendEntry entry : entries) {
            try {
                store.insert(c, List.of(entry));
                written++;
            } catch (SQLException e) {
                rollback(c);
                if (!isDataError(e) || !isValid(c)) {
                    throw new DatabaseDown(e);
                }
                if ("23505".equals(sqlState(e))) {
                    written++; // a unique key the receipt holds is there already: the receipt is
                    continue;
                }
                String why = describe(e);
                LOG.warn(
                        "the database refused receipt {} ({}); it is kept in {}",
                        entry.id(),
                        why,
                        spool.directory().resolve(Spool.REJECTED));
                rejectQuietly(entry.toJson(), why);
            }
        }
        markUp();
        return written;
    }

    private Connection connect() {
        if (connection != null) {
            return connection;
        }
        Connection c = null;
        try {
            c = db.openForWriting();
            if (!migrated) {
                Migrations.migrate(c, db);
                migrated = true;
            }
            c.setAutoCommit(false);
            connection = c;
            return c;
        } catch (SQLException | IllegalStateException e) {
            closeQuietly(c);
            throw new DatabaseDown(e);
        }
    }

    private void markUp() {
        if (down) {
            down = false;
            LOG.info("the spend log's database {} answers again; {} spooled receipts follow", db, spool.pending());
        }
        reachable = true;
        lastError = null;
        warnedFull.set(false);
    }

    private void markDown(Throwable cause) {
        disconnect();
        nextTry = System.nanoTime() + reconnectNanos;
        if (closing) {
            finalTryUsed = true;
        }
        reachable = false;
        lastError = describe(cause);
        if (!down) {
            down = true;
            LOG.warn(
                    "the spend log cannot write to {} ({}); receipts go to the spool {} until it answers",
                    db,
                    lastError,
                    spool.directory());
        }
    }

    private void disconnect() {
        closeQuietly(connection);
        connection = null;
    }

    private void spoolNow(List<SpendEntry> entries) {
        if (entries.isEmpty()) {
            return;
        }
        try {
            spool.append(entries);
        } catch (IOException e) {
            lost.add(entries.size());
            LOG.error(
                    "{} receipts are lost: the database did not take them and the spool {} cannot be written ({})",
                    entries.size(),
                    spool.directory(),
                    e.toString());
        }
    }

    private void rejectQuietly(String line, String why) {
        try {
            spool.reject(line, why);
        } catch (RuntimeException e) {
            lost.increment();
            LOG.error("cannot keep a rejected receipt in {}: {}", spool.directory(), e.toString());
        }
    }

    private void removeShutdownHook() {
        if (Thread.currentThread() == shutdownHook) {
            return;
        }
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException e) {
            // the JVM is shutting down; the hook runs or has run
        }
    }

    /**
     * Whether a failure is about the data sent (SQLSTATE class 22, data exception, or 23, integrity
     * constraint) rather than about the database's reach; only those are worth finding the one entry for.
     */
    private static boolean isDataError(SQLException e) {
        String state = sqlState(e);
        return state != null && (state.startsWith("22") || state.startsWith("23"));
    }

    /** The first SQLSTATE in the exception's chain (a batch's failure carries its statement's in the chain). */
    private static String sqlState(SQLException e) {
        Throwable t = e;
        for (int depth = 0; t != null && depth < 8; depth++) {
            if (t instanceof SQLException) {
                SQLException s = (SQLException) t;
                if (s.getSQLState() != null && !(s instanceof BatchUpdateException && s.getNextException() != null)) {
                    return s.getSQLState();
                }
                t = s.getNextException() != null ? s.getNextException() : s.getCause();
            } else {
                t = t.getCause();
            }
        }
        return null;
    }

    private static boolean isValid(Connection c) {
        try {
            return c.isValid(5);
        } catch (SQLException e) {
            return false;
        }
    }

    private static void rollback(Connection c) {
        try {
            c.rollback();
        } catch (SQLException e) {
            // a broken connection; isValid says so next
        }
    }

    private static void closeQuietly(Connection c) {
        if (c == null) {
            return;
        }
        try {
            c.close();
        } catch (SQLException e) {
            // it is being dropped anyway
        }
    }

    /**
     * Why the database failed, in one short line: the driver's own failure (a batch's carries it as its next
     * exception, with the whole statement and its values in the batch's message) and the root cause under
     * it, each cut to a readable length.
     */
    static String describe(Throwable t) {
        Throwable first = t;
        if (first instanceof BatchUpdateException && ((BatchUpdateException) first).getNextException() != null) {
            first = ((BatchUpdateException) first).getNextException();
        }
        Throwable root = first;
        for (int depth = 0; root.getCause() != null && root.getCause() != root && depth < 8; depth++) {
            root = root.getCause();
        }
        String text = first.getClass().getSimpleName() + ": " + cut(first.getMessage());
        if (root != first) {
            text += " (" + root.getClass().getSimpleName() + ": " + cut(root.getMessage()) + ")";
        }
        return Secrets.redact(text);
    }

    private static String cut(String message) {
        if (message == null) {
            return "no message";
        }
        String oneLine = message.replaceAll("\\s+", " ").strip();
        return oneLine.length() <= 240 ? oneLine : oneLine.substring(0, 240) + "...";
    }

    private static boolean joinQuietly(Thread t, Duration timeout) {
        try {
            t.join(Math.max(1, timeout.toMillis()));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return !t.isAlive();
    }

    private static void awaitQuietly(CountDownLatch latch, Duration timeout) {
        try {
            latch.await(timeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The database cannot be used now; the cause says why. */
    private static final class DatabaseDown extends RuntimeException {
        private static final long serialVersionUID = 1L;

        DatabaseDown(Exception cause) {
            super(cause);
        }
    }

    /**
     * Where a spend log stands.
     *
     * @param received receipts the log was given since it started
     * @param stored receipts it wrote to the database, live or replayed from the spool (a receipt the
     *     database had already counts: it is there)
     * @param queued receipts in memory, waiting for the writer or being written
     * @param spooled receipts in the spool's files, waiting for the database
     * @param rejected receipts the database refused, kept in the spool directory's {@code rejected.jsonl}
     * @param lost receipts that neither the database nor the spool could take (a spool on a full disk)
     * @param databaseReachable whether the last use of the database succeeded
     * @param closed whether the log has closed
     * @param lastError why the database could not be used last, when it could not
     */
    public record Status(
            long received,
            long stored,
            long queued,
            long spooled,
            long rejected,
            long lost,
            boolean databaseReachable,
            boolean closed,
            Optional<String> lastError) {
        /** Checks the error. */
        public Status {
            Objects.requireNonNull(lastError, "lastError");
        }
    }

    /**
     * Builds a {@link JdbcSpendLog}. Each setter checks its value at once; {@link #build()} opens the spool
     * and tries the database. Not thread-safe.
     */
    public static final class Builder {
        private String url = DEFAULT_URL;
        private String user;
        private String password;
        private String tablePrefix = DEFAULT_TABLE_PREFIX;
        private int queueCapacity = DEFAULT_QUEUE_CAPACITY;
        private int batchSize = DEFAULT_BATCH_SIZE;
        private Duration flushInterval = DEFAULT_FLUSH_INTERVAL;
        private Path spoolDirectory = DEFAULT_SPOOL_DIRECTORY;
        private Duration closeTimeout = DEFAULT_CLOSE_TIMEOUT;
        private Duration reconnectInterval = DEFAULT_RECONNECT_INTERVAL;
        private Clock clock = Clock.systemUTC();

        private Builder() {}

        /**
         * The database's JDBC URL: {@code jdbc:h2:...} (embedded file, or server mode) or {@code
         * jdbc:postgresql://host:port/database}. {@link #DEFAULT_URL} unless set.
         */
        public Builder url(String url) {
            if (url == null || url.isBlank()) {
                throw new SettingException("url", "expected a JDBC URL such as " + DEFAULT_URL);
            }
            this.url = url.strip();
            return this;
        }

        /** The database user, or null for the URL's or the driver's default. */
        public Builder user(String user) {
            this.user = user;
            return this;
        }

        /** The database password, or null; never shown in messages. */
        public Builder password(String password) {
            this.password = password;
            Secrets.register(password);
            return this;
        }

        /**
         * The start of the table names: a letter, then letters, digits and underscores, at most 32 characters.
         * {@link #DEFAULT_TABLE_PREFIX} unless set.
         */
        public Builder tablePrefix(String tablePrefix) {
            this.tablePrefix = Database.checkPrefix(tablePrefix);
            return this;
        }

        /** How many receipts the queue holds, from 1 to 10,000,000; {@value #DEFAULT_QUEUE_CAPACITY} unless set. */
        public Builder queueCapacity(int queueCapacity) {
            if (queueCapacity < 1 || queueCapacity > 10_000_000) {
                throw new SettingException(
                        "queueCapacity", "expected a whole number from 1 to 10000000, got " + queueCapacity);
            }
            this.queueCapacity = queueCapacity;
            return this;
        }

        /** How many receipts one batch writes at most, from 1 to 10,000; {@value #DEFAULT_BATCH_SIZE} unless set. */
        public Builder batchSize(int batchSize) {
            if (batchSize < 1 || batchSize > 10_000) {
                throw new SettingException("batchSize", "expected a whole number from 1 to 10000, got " + batchSize);
            }
            this.batchSize = batchSize;
            return this;
        }

        /** How long a receipt waits for its batch to fill, from 1 ms to 1 h; 500 ms unless set. */
        public Builder flushInterval(Duration flushInterval) {
            this.flushInterval = within("flushInterval", flushInterval, Duration.ofMillis(1), Duration.ofHours(1));
            return this;
        }

        /**
         * The directory of the spool files, created when missing; one spend log at a time may use it. {@code
         * hybrid-spend-spool} in the working directory unless set.
         */
        public Builder spoolDirectory(Path spoolDirectory) {
            if (spoolDirectory == null) {
                throw new SettingException("spoolDirectory", "expected a directory");
            }
            this.spoolDirectory = spoolDirectory;
            return this;
        }

        /**
         * The spool directory as text.
         *
         * @throws IllegalArgumentException naming {@code spoolDirectory} when it is not a path
         */
        public Builder spoolDirectory(String spoolDirectory) {
            if (spoolDirectory == null || spoolDirectory.isBlank()) {
                throw new SettingException("spoolDirectory", "expected a directory");
            }
            try {
                return spoolDirectory(Path.of(spoolDirectory));
            } catch (InvalidPathException e) {
                throw new SettingException("spoolDirectory", "expected a directory, got \"" + spoolDirectory + "\"");
            }
        }

        /** How long {@link #close()} waits for the database, from 0 to 1 h; 10 s unless set. */
        public Builder closeTimeout(Duration closeTimeout) {
            this.closeTimeout = within("closeTimeout", closeTimeout, Duration.ZERO, Duration.ofHours(1));
            return this;
        }

        /** How often the database is tried again while it is down, from 1 ms to 1 h; 5 s unless set. */
        public Builder reconnectInterval(Duration reconnectInterval) {
            this.reconnectInterval =
                    within("reconnectInterval", reconnectInterval, Duration.ofMillis(1), Duration.ofHours(1));
            return this;
        }

        /** The clock that dates when receipts were received; the system's UTC clock unless set. */
        public Builder clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock");
            return this;
        }

        private static Duration within(String setting, Duration d, Duration min, Duration max) {
            if (d == null || d.compareTo(min) < 0 || d.compareTo(max) > 0) {
                throw new SettingException(
                        setting, "expected a duration from " + min.toMillis() + " ms to " + max + ", got " + d);
            }
            return d;
        }

        /**
         * The log, with its writer started. The database is tried once here: its schema is created or
         * migrated when it answers; when it does not, the log starts anyway, spools, and tries again later.
         *
         * @throws IllegalArgumentException naming the setting ({@code url}, {@code spoolDirectory}) when no
         *     driver accepts the URL, or the spool directory cannot be used or is another log's
         * @throws IllegalStateException when the database answers but holds tables of this prefix from a
         *     schema this library does not know
         */
        public JdbcSpendLog build() {
            Database db = new Database(url, user, password, tablePrefix);
            Spool spool = Spool.open(spoolDirectory);
            JdbcSpendLog log = new JdbcSpendLog(this, db, spool);
            try {
                log.connect();
                log.reachable = true;
            } catch (DatabaseDown d) {
                if (d.getCause() instanceof IllegalStateException) {
                    spool.close();
                    throw (IllegalStateException) d.getCause();
                }
                log.markDown(d.getCause());
                log.nextTry = System.nanoTime(); // the first batch tries again
            }
            log.writer.start();
            try {
                Runtime.getRuntime().addShutdownHook(log.shutdownHook);
            } catch (IllegalStateException e) {
                // the JVM is shutting down already: nothing to hook
            }
            return log;
        }
    }
}

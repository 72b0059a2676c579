package dev.hybridinference.ledger;

import dev.hybridinference.ledger.internal.Database;
import dev.hybridinference.ledger.internal.ReceiptStore;
import java.io.IOException;
import java.io.Writer;
import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;

/**
 * Totals of a spend log's receipts, answered by the database: calls, tokens and exact cost, in a time window,
 * overall or by provider, model or the value of one tag; and the receipts as a trace for the planner.
 *
 * <p>Sums are the database's own, over exact decimals, so a total equals the sum of its receipts' costs to
 * the last digit (compare amounts with {@link BigDecimal#compareTo}: their scale is whatever the sum has).
 * Every query opens a connection of its own. Thread-safe.
 *
 * <pre>{@code
 * SpendTotals totals = SpendTotals.builder().url("jdbc:h2:./hybrid-spend").build();
 * for (SpendTotals.Group g : totals.byTag("tenant", SpendTotals.Window.between(monthStart, monthEnd))) {
 *     System.out.println(g.key() + ": $" + g.totals().cost().toPlainString());
 * }
 * }</pre>
 */
public final class SpendTotals {
    private static final String SUMS = "COUNT(*), COALESCE(SUM(CASE WHEN r.outcome = 'failed' THEN 1 ELSE 0 END), 0),"
            + " COALESCE(SUM(r.input_tokens), 0), COALESCE(SUM(r.output_tokens), 0),"
            + " COALESCE(SUM(r.cached_input_tokens), 0), COALESCE(SUM(r.cost), 0)";

    private final Database db;

    SpendTotals(Database db) {
        this.db = db;
    }

    /** A builder for the tables of a spend log; the URL is required. */
    public static Builder builder() {
        return new Builder();
    }

    /** All receipts started in the window. */
    public Totals total(Window window) throws SQLException {
        String sql = "SELECT " + SUMS + " FROM " + db.table("receipts") + " r WHERE " + window.sql();
        try (Connection c = db.open();
                PreparedStatement p = c.prepareStatement(sql)) {
            window.bind(p, 1);
            try (ResultSet r = p.executeQuery()) {
                r.next();
                return totals(r, 1);
            }
        }
    }

    /** Receipts started in the window, by the provider (for a composite call, the member) that answered. */
    public List<Group> byProvider(Window window) throws SQLException {
        return grouped("r.provider_id", "", window, null);
    }

    /** Receipts started in the window, by the model that answered. */
    public List<Group> byModel(Window window) throws SQLException {
        return grouped("r.model", "", window, null);
    }

    /**
     * Receipts started in the window that carry the tag {@code key}, by its value. Receipts without the tag
     * are in none of the groups: {@link #withoutTag} counts them, so that the groups and it add up to {@link
     * #total}.
     */
    public List<Group> byTag(String key, Window window) throws SQLException {
        Objects.requireNonNull(key, "key");
        return grouped(
                "t.tag_value",
                " JOIN " + db.table("receipt_tags") + " t ON t.receipt_id = r.id AND t.tag_key = ?",
                window,
                key);
    }

    /** Receipts started in the window that do not carry the tag {@code key}. */
    public Totals withoutTag(String key, Window window) throws SQLException {
        Objects.requireNonNull(key, "key");
        String sql = "SELECT " + SUMS + " FROM " + db.table("receipts") + " r WHERE " + window.sql()
                + " AND NOT EXISTS (SELECT 1 FROM " + db.table("receipt_tags")
                + " t WHERE t.receipt_id = r.id AND t.tag_key = ?)";
        try (Connection c = db.open();
                PreparedStatement p = c.prepareStatement(sql)) {
            int next = window.bind(p, 1);
            p.setString(next, key);
            try (ResultSet r = p.executeQuery()) {
                r.next();
                return totals(r, 1);
            }
        }
    }

    /**
     * Writes the receipts started in the window as a trace CSV that the planner reads ({@code TraceTraffic}
     * in the planner module): a header {@code timestamp,input_tokens,output_tokens,tags}, then one row per
     * receipt in order of start time, with its start as an ISO-8601 instant, its tokens, and its tags as
     * {@code key=value} pairs in key order joined by {@code ;}, where {@code %}, {@code ;}, {@code =}, {@code
     * ,}, {@code "}, CR and LF in keys and values are written {@code %XX}. As the planner writes traces,
     * receipts that replay nothing are left out: no input or no output tokens (most failed calls), and
     * keep-warm calls (tagged {@code purpose=keep-warm}). The writer is flushed, not closed.
     *
     * @return the number of rows written
     * @throws IllegalArgumentException for a receipt with more tokens than a trace holds (2^31 - 1)
     */
    public long exportTrace(Window window, Writer out) throws SQLException, IOException {
        Objects.requireNonNull(out, "out");
        String sql = "SELECT r.id, r.started_at, r.input_tokens, r.output_tokens, t.tag_key, t.tag_value FROM "
                + db.table("receipts") + " r LEFT JOIN " + db.table("receipt_tags") + " t ON t.receipt_id = r.id"
                + " WHERE " + window.sql() + " AND r.input_tokens > 0 AND r.output_tokens > 0"
                + " ORDER BY r.started_at, r.id";
        out.write("timestamp,input_tokens,output_tokens,tags\n");
        long written = 0;
        try (Connection c = db.open()) {
            // Streams the rows (PostgreSQL reads a result whole unless in a transaction with a fetch size).
            c.setAutoCommit(false);
            try (PreparedStatement p = c.prepareStatement(sql)) {
                p.setFetchSize(1000);
                window.bind(p, 1);
                try (ResultSet r = p.executeQuery()) {
                    TraceRow row = null;
                    while (r.next()) {
                        String id = r.getString(1);
                        if (row == null || !row.id.equals(id)) {
                            if (row != null && row.write(out)) {
                                written++;
                            }
                            row = new TraceRow(
                                    id, r.getObject(2, OffsetDateTime.class).toInstant(), r.getLong(3), r.getLong(4));
                        }
                        String key = r.getString(5);
                        if (key != null) {
                            row.tags.put(key, r.getString(6));
                        }
                    }
                    if (row != null && row.write(out)) {
                        written++;
                    }
                }
            } finally {
                c.rollback();
            }
        }
        out.flush();
        return written;
    }

    private List<Group> grouped(String keyColumn, String join, Window window, String joinParameter)
            throws SQLException {
        String sql = "SELECT " + keyColumn + ", " + SUMS + " FROM " + db.table("receipts") + " r" + join + " WHERE "
                + window.sql() + " GROUP BY " + keyColumn;
        List<Group> out = new ArrayList<>();
        try (Connection c = db.open();
                PreparedStatement p = c.prepareStatement(sql)) {
            int next = 1;
            if (joinParameter != null) {
                p.setString(next++, joinParameter);
            }
            window.bind(p, next);
            try (ResultSet r = p.executeQuery()) {
                while (r.next()) {
                    out.add(new Group(r.getString(1), totals(r, 2)));
                }
            }
        }
        out.sort(Comparator.comparing((Group g) -> g.totals().cost()).reversed().thenComparing(Group::key));
        return out;
    }

    private static Totals totals(ResultSet r, int from) throws SQLException {
        return new Totals(
                r.getLong(from),
                r.getLong(from + 1),
                r.getLong(from + 2),
                r.getLong(from + 3),
                r.getLong(from + 4),
                plain(r.getBigDecimal(from + 5)));
    }

    /** A sum as it reads best: no trailing zeros, never an exponent. */
    static BigDecimal plain(BigDecimal d) {
        if (d == null || d.signum() == 0) {
            return BigDecimal.ZERO;
        }
        BigDecimal s = d.stripTrailingZeros();
        return s.scale() < 0 ? s.setScale(0) : s;
    }

    /** A receipt of the trace export, with its tags as they arrive. */
    private static final class TraceRow {
        final String id;
        final Instant startedAt;
        final long input;
        final long output;
        final Map<String, String> tags = new TreeMap<>();

        TraceRow(String id, Instant startedAt, long input, long output) {
            this.id = id;
            this.startedAt = startedAt;
            this.input = input;
            this.output = output;
        }

        /** Writes the row unless it is a keep-warm call; whether it did. */
        boolean write(Writer out) throws IOException {
            if ("keep-warm".equals(tags.get("purpose"))) {
                return false;
            }
            if (input > Integer.MAX_VALUE || output > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("receipt " + id + " has " + input + " input and " + output
                        + " output tokens; a trace holds at most " + Integer.MAX_VALUE + " of each");
            }
            StringBuilder sb = new StringBuilder(64)
                    .append(startedAt)
                    .append(',')
                    .append(input)
                    .append(',')
                    .append(output)
                    .append(',');
            boolean first = true;
            for (Map.Entry<String, String> t : tags.entrySet()) {
                if (!first) {
                    sb.append(';');
                }
                first = false;
                escape(t.getKey(), sb);
                sb.append('=');
                escape(t.getValue(), sb);
            }
            out.write(sb.append('\n').toString());
            return true;
        }
    }

    /** Writes {@code %}, {@code ;}, {@code =}, {@code ,}, {@code "}, CR and LF as {@code %XX}; the rest as is. */
    static void escape(String text, StringBuilder out) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '%' || c == ';' || c == '=' || c == ',' || c == '"' || c == '\r' || c == '\n') {
                out.append('%').append(HEX[c >> 4]).append(HEX[c & 0xF]);
            } else {
                out.append(c);
            }
        }
    }

    private static final char[] HEX = "0123456789ABCDEF".toCharArray();

    /**
     * Totals of a set of receipts.
     *
     * @param calls receipts counted
     * @param failedCalls those of failed calls
     * @param inputTokens their input tokens
     * @param outputTokens their output tokens
     * @param cachedInputTokens their input tokens served from a cache (part of {@code inputTokens})
     * @param cost their cost in USD, exact
     */
    public record Totals(
            long calls,
            long failedCalls,
            long inputTokens,
            long outputTokens,
            long cachedInputTokens,
            BigDecimal cost) {
        /** Checks the cost. */
        public Totals {
            Objects.requireNonNull(cost, "cost");
        }
    }

    /**
     * Totals of the receipts that share a key.
     *
     * @param key the provider, model or tag value
     * @param totals their totals
     */
    public record Group(String key, Totals totals) {
        /** Checks that nothing is missing. */
        public Group {
            Objects.requireNonNull(key, "key");
            Objects.requireNonNull(totals, "totals");
        }
    }

    /**
     * The receipts whose calls started from {@code from} (inclusive) until {@code to} (exclusive); an empty
     * side is open. Times are compared at the databases' precision, whole microseconds.
     *
     * @param from the earliest start counted, or empty for no limit
     * @param to the start from which receipts are no longer counted, or empty for no limit
     */
    public record Window(Optional<Instant> from, Optional<Instant> to) {
        /**
         * Checks the order.
         *
         * @throws IllegalArgumentException when {@code to} is before {@code from}
         */
        public Window {
            Objects.requireNonNull(from, "from");
            Objects.requireNonNull(to, "to");
            if (from.isPresent() && to.isPresent() && to.get().isBefore(from.get())) {
                throw new IllegalArgumentException(
                        "the window ends (" + to.get() + ") before it starts (" + from.get() + ")");
            }
        }

        /** Every receipt. */
        public static Window all() {
            return new Window(Optional.empty(), Optional.empty());
        }

        /** From {@code from} (inclusive) until {@code to} (exclusive). */
        public static Window between(Instant from, Instant to) {
            return new Window(Optional.of(from), Optional.of(to));
        }

        /** From {@code from} (inclusive) on. */
        public static Window since(Instant from) {
            return new Window(Optional.of(from), Optional.empty());
        }

        /** Before {@code to}. */
        public static Window until(Instant to) {
            return new Window(Optional.empty(), Optional.of(to));
        }

        String sql() {
            String s = "1 = 1";
            if (from.isPresent()) {
                s += " AND r.started_at >= ?";
            }
            if (to.isPresent()) {
                s += " AND r.started_at < ?";
            }
            return s;
        }

        /** Binds the window's times from parameter {@code index}; returns the next free index. */
        int bind(PreparedStatement p, int index) throws SQLException {
            if (from.isPresent()) {
                p.setObject(index++, ReceiptStore.timestamp(from.get()));
            }
            if (to.isPresent()) {
                p.setObject(index++, ReceiptStore.timestamp(to.get()));
            }
            return index;
        }

        /** For example {@code from 2026-11-01T00:00:00Z until 2026-12-01T00:00:00Z}, or {@code all time}. */
        @Override
        public String toString() {
            if (from.isEmpty() && to.isEmpty()) {
                return "all time";
            }
            return (from.map(f -> "from " + f).orElse("") + " "
                            + to.map(t -> "until " + t).orElse(""))
                    .strip();
        }
    }

    /** Builds {@link SpendTotals} for a spend log's tables. Not thread-safe. */
    public static final class Builder {
        private String url;
        private String user;
        private String password;
        private String tablePrefix = JdbcSpendLog.DEFAULT_TABLE_PREFIX;

        private Builder() {}

        /** The database's JDBC URL, as the spend log was given it. Required. */
        public Builder url(String url) {
            this.url = url;
            return this;
        }

        /** The database user, or null. */
        public Builder user(String user) {
            this.user = user;
            return this;
        }

        /** The database password, or null; never shown in messages. */
        public Builder password(String password) {
            this.password = password;
            return this;
        }

        /** The spend log's table prefix; {@link JdbcSpendLog#DEFAULT_TABLE_PREFIX} unless set. */
        public Builder tablePrefix(String tablePrefix) {
            this.tablePrefix = Database.checkPrefix(tablePrefix);
            return this;
        }

        /**
         * The queries. Nothing is opened until one runs.
         *
         * @throws IllegalArgumentException naming {@code url} when it is missing or no driver accepts it
         */
        public SpendTotals build() {
            if (url == null || url.isBlank()) {
                throw new dev.hybridinference.ledger.internal.SettingException(
                        "url", "expected a JDBC URL such as " + JdbcSpendLog.DEFAULT_URL);
            }
            return new SpendTotals(new Database(url.strip(), user, password, tablePrefix));
        }
    }
}

package dev.hybridinference.ledger.internal;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Types;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;

/**
 * Writes entries to the receipts table and its child tables, each only when absent, so that writing a
 * receipt again (a replay of the spool after a batch that did reach the database) changes nothing. Not
 * thread-safe: one writer per instance. Internal.
 */
public final class ReceiptStore {
    /** The receipts table's columns in the order they are bound. */
    static final String COLUMNS = "id, started_at, provider_id, deployment_kind, model, route, tier, spilled_over,"
            + " fell_back, attempts, outcome, error_type, total_time_us, time_to_first_token_us, queue_time_us,"
            + " compute_time_us, instance_time_us, cold_start_predicted, cold_start_observed, cold_start_us,"
            + " input_tokens, output_tokens, cached_input_tokens, tokens_estimated, request_bytes, response_bytes,"
            + " cost, cost_estimated, session_id, received_at";

    private static final int COLUMN_COUNT = COLUMNS.split(",").length;

    private final Database db;
    private final String insertReceipt;
    private final String insertTag;
    private final String insertAttribute;

    /** A store for the tables of {@code db}. */
    public ReceiptStore(Database db) {
        this.db = db;
        Dialect d = db.dialect();
        this.insertReceipt = d.insertReceipt(db.table("receipts"), COLUMNS, COLUMN_COUNT);
        this.insertTag = d.insertChild(db.table("receipt_tags"), "tag_key", "tag_value");
        this.insertAttribute = d.insertChild(db.table("receipt_attributes"), "attribute_key", "attribute_value");
    }

    /**
     * Writes entries in one transaction, as JDBC batches.
     *
     * @param c a connection not in auto-commit mode; committed on success, left for the caller to roll back
     *     on failure
     * @return how many of the entries were new to the database, where the driver says (entries it already
     *     had count as zero); -1 when the driver does not say
     */
    public int insert(Connection c, List<SpendEntry> entries) throws SQLException {
        int added = 0;
        boolean known = true;
        try (PreparedStatement p = c.prepareStatement(insertReceipt)) {
            for (SpendEntry e : entries) {
                bind(p, e);
                p.addBatch();
            }
            for (int n : p.executeBatch()) {
                if (n >= 0) {
                    added += n;
                } else {
                    known = false;
                }
            }
        }
        children(c, insertTag, entries, true);
        children(c, insertAttribute, entries, false);
        c.commit();
        return known ? added : -1;
    }

    private void children(Connection c, String sql, List<SpendEntry> entries, boolean tags) throws SQLException {
        boolean any = false;
        try (PreparedStatement p = c.prepareStatement(sql)) {
            for (SpendEntry e : entries) {
                for (Map.Entry<String, String> kv : (tags ? e.tags() : e.attributes()).entrySet()) {
                    p.setString(1, e.id());
                    p.setString(2, kv.getKey());
                    p.setString(3, kv.getValue());
                    p.addBatch();
                    any = true;
                }
            }
            if (any) {
                p.executeBatch();
            }
        }
    }

    private void bind(PreparedStatement p, SpendEntry e) throws SQLException {
        int i = 1;
        if (db.dialect().bindsIdTwice()) {
            p.setString(i++, e.id());
        }
        p.setString(i++, e.id());
        p.setObject(i++, timestamp(e.startedAt()));
        p.setString(i++, e.providerId());
        p.setString(i++, e.deploymentKind());
        p.setString(i++, e.model());
        p.setString(i++, e.route());
        setString(p, i++, e.tier());
        p.setBoolean(i++, e.spilledOver());
        p.setBoolean(i++, e.fellBack());
        p.setInt(i++, e.attempts());
        p.setString(i++, e.outcome());
        setString(p, i++, e.errorType());
        p.setLong(i++, e.totalTimeUs());
        setLong(p, i++, e.timeToFirstTokenUs());
        p.setLong(i++, e.queueTimeUs());
        p.setLong(i++, e.computeTimeUs());
        p.setLong(i++, e.instanceTimeUs());
        p.setBoolean(i++, e.coldStartPredicted());
        p.setBoolean(i++, e.coldStartObserved());
        setLong(p, i++, e.coldStartUs());
        p.setLong(i++, e.inputTokens());
        p.setLong(i++, e.outputTokens());
        p.setLong(i++, e.cachedInputTokens());
        p.setBoolean(i++, e.tokensEstimated());
        p.setLong(i++, e.requestBytes());
        p.setLong(i++, e.responseBytes());
        p.setBigDecimal(i++, e.cost());
        p.setBoolean(i++, e.costEstimated());
        setString(p, i++, e.sessionId());
        p.setObject(i, timestamp(e.receivedAt()));
    }

    /**
     * A time as bound: cut to whole microseconds, the precision of both databases' timestamps, so that each
     * stores the same instant rather than rounding its own way.
     */
    public static OffsetDateTime timestamp(Instant t) {
        return OffsetDateTime.ofInstant(t.truncatedTo(ChronoUnit.MICROS), ZoneOffset.UTC);
    }

    private static void setString(PreparedStatement p, int i, String value) throws SQLException {
        if (value == null) {
            p.setNull(i, Types.VARCHAR);
        } else {
            p.setString(i, value);
        }
    }

    private static void setLong(PreparedStatement p, int i, Long value) throws SQLException {
        if (value == null) {
            p.setNull(i, Types.BIGINT);
        } else {
            p.setLong(i, value);
        }
    }
}
